"""Pure: what a node says about itself: bootstrap log, triage, container runtimes, autostop."""
