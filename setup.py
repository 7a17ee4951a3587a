"""Only one thing pyproject.toml cannot say: the project keeps cluster-config/ (the ParallelCluster
templates) and bootstrap/ (the node bootstrap) at the top level, by its layout, and an installed
clustertools needs both. They are copied into the wheel as cluster_tools/_shipped/; see
cluster_tools/store/shipped_files.py for how they are found (the checkout first, then the installed copy)."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("cluster-config", "bootstrap")


class BuildPyWithShippedFolders(build_py):
    def run(self) -> None:
        super().run()
        root = Path(__file__).resolve().parent
        for name in SHIPPED:
            target = Path(self.build_lib) / "cluster_tools" / "_shipped" / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(root / name, target, ignore=shutil.ignore_patterns("__pycache__"))


setup(cmdclass={"build_py": BuildPyWithShippedFolders})
