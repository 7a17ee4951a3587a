"""Local files clustertools keeps: the per-user state dir (clusters, runs, pinned keys) and the folders it ships."""
