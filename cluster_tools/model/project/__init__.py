"""Pure: the project file ``clustertools.yaml`` and where it is."""
