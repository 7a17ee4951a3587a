"""clustertools: one job per subject on a Slurm cluster (AWS ParallelCluster or any Slurm over SSH).

The Python API (``cluster_tools.api.project_api``): ``Project.load()``, ``project.cluster().submit(...)`` -> ``Run``,
``run.status()``, ``run.wait()``, ``run.logs(subject)``; errors are ``ClusterToolsError``. Imported on first
use, so the CLI starts as fast without it.
"""

__version__ = "0.1.0"
__all__ = ["Cluster", "ClusterToolsError", "Project", "Resubmission", "Run", "RunFailed", "RunStatus", "SubjectStatus"]

_HOMES = {
    "Project": "cluster_tools.api.project_api",
    "Cluster": "cluster_tools.api.project_api",
    "Run": "cluster_tools.api.project_api",
    "RunFailed": "cluster_tools.api.project_api",
    "Resubmission": "cluster_tools.api.project_api",
    "RunStatus": "cluster_tools.model.runs.run_status",
    "SubjectStatus": "cluster_tools.model.runs.run_status",
    "ClusterToolsError": "cluster_tools.errors",
}


def __getattr__(name: str):
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'cluster_tools' has no attribute {name!r}")
