"""Pure: a run, its subjects and job, its records and status, its report."""
