"""I/O at the edges: local daemons, SSH (paramiko), S3 (boto3), ParallelCluster (pcluster.lib)."""
