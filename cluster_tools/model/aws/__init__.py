"""Pure: the ``parallelcluster:`` section, ParallelCluster's facts and clustertools' checks of a config."""
