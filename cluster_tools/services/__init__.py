"""Orchestration: plain functions over config, render, slurm and transport."""
