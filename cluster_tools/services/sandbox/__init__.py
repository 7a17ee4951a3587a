"""The local sandbox: a real small Slurm cluster on this machine, laid out as ParallelCluster lays one out."""
