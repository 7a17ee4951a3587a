"""Pure: the record of a known cluster (how to reach its head node)."""
