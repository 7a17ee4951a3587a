"""Parse what Slurm prints about nodes."""

from __future__ import annotations

from dataclasses import dataclass


def parse_sinfo_node_states(text: str) -> dict[str, str]:
    """``sinfo -h -N -o '%N|%T'`` into {node: state} (state lower-case, e.g. ``idle``, ``down*``)."""
    states: dict[str, str] = {}
    for line in text.splitlines():
        node, sep, state = line.strip().partition("|")
        if sep:
            states[node] = state.strip()
    return states


# sinfo's state suffixes (man sinfo, NODE STATE CODES): what a node's power and health are doing.
_SUFFIXES = {
    "~": "powered down",
    "#": "powering up",
    "%": "powering down",
    "!": "power down pending",
    "*": "not responding",
    "$": "maintenance",
    "@": "reboot pending",
    "^": "rebooting",
    "-": "planned",
}


@dataclass(frozen=True)
class NodeStatus:
    """One node as ``sinfo -h -N -o '%N|%T|%c|%m|%P|%E'`` shows it."""

    name: str
    state: str  # the base state: idle, allocated, mixed, down, drained, completing...
    flags: tuple[str, ...]  # what the suffixes say: "powered down", "powering up", "not responding"...
    cpus: int
    memory_mb: int
    partition: str
    reason: str

    @property
    def label(self) -> str:
        """``idle (powered down)``, ``allocated (powering up)``, ``down: spot interruption``."""
        text = self.state + (f" ({', '.join(self.flags)})" if self.flags else "")
        return text + (f": {self.reason}" if self.reason else "")


SINFO_NODES_FORMAT = "%N|%T|%c|%m|%P|%E"


def parse_sinfo_nodes(text: str) -> list[NodeStatus]:
    """Parse ``sinfo -h -N -o SINFO_NODES_FORMAT``; a node in several partitions is listed once per partition."""
    nodes = []
    for line in text.splitlines():
        parts = line.strip().split("|", 5)
        if len(parts) != 6 or not parts[0]:
            continue
        name, raw_state, cpus, memory, partition, reason = parts
        base = raw_state.strip()
        flags: list[str] = []
        while base and base[-1] in _SUFFIXES:
            flags.insert(0, _SUFFIXES[base[-1]])
            base = base[:-1]
        nodes.append(
            NodeStatus(
                name=name,
                state=base,
                flags=tuple(flags),
                cpus=_int(cpus),
                memory_mb=_int(memory),
                partition=partition.rstrip("*"),
                reason="" if reason.strip() == "none" else reason.strip(),
            )
        )
    return nodes


def _int(text: str) -> int:
    digits = text.strip().rstrip("+")
    return int(digits) if digits.isdigit() else 0
