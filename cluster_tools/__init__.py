"""clustertools: one job per subject on a Slurm cluster (AWS ParallelCluster or any Slurm over SSH)."""

__version__ = "0.1.0"
