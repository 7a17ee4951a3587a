"""`sandbox down` removes what tasks left in the nodes' /tmp (the wrapper's podman store, shared inputs), as a real
node loses its /tmp with its instance; the sandbox's nodes share this machine's /tmp, so only when no other sandbox
of that login user runs (services/sandbox_nodes.remove_node_scratch)."""

from __future__ import annotations

from cluster_tools.services.sandbox.sandbox_nodes import remove_node_scratch


def scratch(tmp_path, uid=1001):
    made = [tmp_path / f"clustertools-podman-{uid}" / "storage", tmp_path / f"clustertools-shared-{uid}" / "run-1"]
    for path in made:
        path.mkdir(parents=True)
        (path / "file").write_text("x")
    (tmp_path / "unrelated").mkdir()
    return [path.parent for path in made]


def test_the_last_sandbox_down_removes_its_nodes_scratch(tmp_path):
    made = scratch(tmp_path)
    removed = remove_node_scratch(
        1001, "CLUSTERTOOLS_SANDBOX", "/state/a", tmp=tmp_path, running=lambda name: {"/state/a"}
    )  # only this sandbox's own processes
    assert removed == made and not any(path.exists() for path in made) and (tmp_path / "unrelated").is_dir()


def test_another_running_sandbox_keeps_it(tmp_path):
    made = scratch(tmp_path)
    asked = []
    removed = remove_node_scratch(
        1001,
        "CLUSTERTOOLS_SANDBOX",
        "/state/a",
        tmp=tmp_path,
        running=lambda name: asked.append(name) or {"/state/a", "/state/b"},
    )
    assert removed == [] and all(path.is_dir() for path in made) and asked == ["CLUSTERTOOLS_SANDBOX"]


def test_other_users_scratch_and_links_are_left_alone(tmp_path):
    other = scratch(tmp_path, uid=1002)
    (tmp_path / "clustertools-podman-1001").symlink_to(other[0])
    assert remove_node_scratch(1001, "CLUSTERTOOLS_SANDBOX", "/state/a", tmp=tmp_path, running=lambda name: set()) == []
    assert all(path.is_dir() for path in other)
    assert remove_node_scratch(None, "CLUSTERTOOLS_SANDBOX", "/state/a", tmp=tmp_path, running=lambda name: set()) == []
