"""`sandbox status` shows each node and its state as sinfo does (power states included)."""

from __future__ import annotations

import json

from tests.helpers import err, out


def test_status_lists_the_nodes(sandbox) -> None:
    shown = sandbox.cli("sandbox", "status", "--json")
    assert shown.returncode == 0, err(shown)
    nodes = json.loads(out(shown))["nodes"]
    assert nodes and all(n["partition"] == "compute" and n["cpus"] >= 1 for n in nodes)
    assert {n["state"] for n in nodes} <= {"idle", "mixed", "allocated", "completing"}
    table = sandbox.cli("sandbox", "status")
    assert table.returncode == 0 and "nodes" in out(table) and nodes[0]["name"] in out(table)
