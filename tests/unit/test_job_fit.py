"""validate: the project's task must fit one node of its queue, sized as ParallelCluster sizes it."""

from __future__ import annotations

from cluster_tools.model.aws.cluster_spec import ClusterSpec
from cluster_tools.model.aws.job_fit import job_fit_problems
from cluster_tools.model.project.project_config import JobSpec

SIZES = {"c5.xlarge": (4, 8.0), "c6i.xlarge": (4, 8.0), "r6i.2xlarge": (8, 64.0), "c6i.2xlarge": (8, 16.0)}.get


def spec(*queues: dict) -> ClusterSpec:
    return ClusterSpec.model_validate(
        {"region": "us-east-1", "subnet_id": "subnet-0123456789abcdef0", "queues": list(queues)}
    )


def test_a_task_over_a_node_is_named_with_the_most_that_fits() -> None:
    cluster = spec({"name": "spot", "instance_types": ["c6i.xlarge", "c5.xlarge"]})
    assert job_fit_problems(JobSpec(cpus=4, mem="7782M"), cluster, SIZES) == []
    assert job_fit_problems(JobSpec(cpus=16, mem="8G"), cluster, SIZES) == [
        "job.cpus: 16 is more than one node of queue spot has (c6i.xlarge: 4 vCPUs); the most that fits is cpus: 4",
        "job.mem: 8G is more than one node of queue spot holds (c6i.xlarge: 8 GiB, 7782 MB of it for Slurm's tasks); "
        "the most that fits is mem: 7782M",
    ]


def test_the_smallest_type_of_a_queue_decides_and_the_partition_picks_the_queue() -> None:
    cluster = spec(
        {"name": "cpu", "instance_types": ["c5.xlarge"]},
        {"name": "big", "instance_types": ["r6i.2xlarge", "c6i.2xlarge"]},
    )
    assert job_fit_problems(JobSpec(cpus=8, mem="20G", partition="big"), cluster, SIZES) == [
        "job.mem: 20G is more than one node of queue big holds "
        "(c6i.2xlarge: 16 GiB, 15564 MB of it for Slurm's tasks); the most that fits is mem: 15564M"
    ]
    assert job_fit_problems(JobSpec(cpus=8, mem="1G"), cluster, SIZES)[0].startswith(
        "job.cpus: 8 is more than one node of queue cpu"
    )
    assert job_fit_problems(JobSpec(partition="gpu"), cluster, SIZES) == [
        "job.partition: gpu is not a queue of parallelcluster.queues (cpu, big)"
    ]


def test_unknown_sizes_are_left_to_submit() -> None:
    assert job_fit_problems(JobSpec(cpus=512), spec({"name": "x", "instance_types": ["zz9.huge"]}), SIZES) == []


def test_gpus_need_a_queue_of_gpu_instances() -> None:
    gpus = {"g5.xlarge": 1, "g6.xlarge": 1, "p3.8xlarge": 4, "c5.xlarge": 0}.get
    sizes = {"g5.xlarge": (4, 16.0), "g6.xlarge": (4, 16.0), "p3.8xlarge": (32, 244.0), "c5.xlarge": (4, 8.0)}.get
    cluster = spec(
        {"name": "cpu", "instance_types": ["c5.xlarge"]}, {"name": "gpu", "instance_types": ["g5.xlarge", "g6.xlarge"]}
    )
    assert job_fit_problems(JobSpec(gpus=1, partition="gpu"), cluster, sizes, gpus) == []
    assert job_fit_problems(JobSpec(gpus=1), cluster, sizes, gpus) == [
        "job.gpus: 1 asked, but queue cpu has no GPU (c5.xlarge): name a queue of GPU instances in job.partition"
    ]
    assert job_fit_problems(JobSpec(gpus=2, partition="gpu"), cluster, sizes, gpus) == [
        "job.gpus: 2 is more than one node of queue gpu has (g5.xlarge: 1 GPU(s)); the most that fits is gpus: 1"
    ]
