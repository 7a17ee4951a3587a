"""Services that reach into a cluster over SSH: shells, files, autostop, triage, bootstrap refresh."""
