"""Services of an AWS ParallelCluster cluster: config, up, start, update, pre-flight, prices."""
