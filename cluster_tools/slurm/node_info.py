"""Parse what Slurm prints about nodes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NodeHardware:
    cpus: int
    real_memory_mb: int


def parse_key_values(text: str) -> dict[str, str]:
    """``A=1 B=x y=z`` (Slurm's one-line records) into a dict; later keys win."""
    pairs: dict[str, str] = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if sep:
            pairs[key] = value
    return pairs


def parse_slurmd_c(text: str) -> NodeHardware:
    """The first line of ``slurmd -C``: ``NodeName=vm CPUs=2 ... RealMemory=24105``."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    pairs = parse_key_values(first)
    try:
        return NodeHardware(cpus=int(pairs["CPUs"]), real_memory_mb=int(pairs["RealMemory"]))
    except (KeyError, ValueError):
        raise ValueError(f"unexpected `slurmd -C` output: {first!r}") from None


def parse_sinfo_node_states(text: str) -> dict[str, str]:
    """``sinfo -h -N -o '%N|%T'`` into {node: state} (state lower-case, e.g. ``idle``, ``down*``)."""
    states: dict[str, str] = {}
    for line in text.splitlines():
        node, sep, state = line.strip().partition("|")
        if sep:
            states[node] = state.strip()
    return states
