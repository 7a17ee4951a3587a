"""Services over any known cluster: list, register, describe, down, start."""
