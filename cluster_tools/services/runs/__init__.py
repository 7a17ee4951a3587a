"""Services of a run: submit, status, logs, cancel, resubmit, results, report, cost."""
