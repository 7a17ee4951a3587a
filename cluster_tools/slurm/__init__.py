"""Pure: build Slurm command lines and parse Slurm's text output into typed records."""
