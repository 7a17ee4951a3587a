"""The Python API: ``Project`` and ``Run``, re-exported by ``cluster_tools``."""
