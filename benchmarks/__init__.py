"""Benchmarks of clustertools against the plain tools users would otherwise use, on a private sandbox.

Run with ``dev/benchmark`` (``--quick`` for a smoke run, ``--only NAME`` for one figure). Every figure is
measured side by side with its baseline in the same run and printed beside its target.
"""
