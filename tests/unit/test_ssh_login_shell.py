"""Every command clustertools sends runs in a login shell, and a missing program is named."""

from __future__ import annotations

import subprocess

import pytest

from cluster_tools.errors import TransportError
from cluster_tools.transport.ssh import RemoteResult, login_shell, missing_command


@pytest.mark.parametrize("command", ["sbatch --version", "echo 'it''s' \"$HOME\"; exit 3", "a\nb", "$(id)"])
def test_login_shell_runs_the_command_unchanged(command: str) -> None:
    """What the remote shell gets back from the quoting is exactly the command, run by `bash --login -c`."""
    line = login_shell(command)
    assert line.startswith("/bin/bash --login -c ")
    words = subprocess.run(
        ["bash", "-c", f"printf '%s\\0' {line.removeprefix('/bin/bash ')}"], capture_output=True, text=True, check=True
    ).stdout.split("\0")[:-1]
    assert words == ["--login", "-c", command]


def test_login_shell_finds_what_profile_d_adds(tmp_path) -> None:
    """A login shell reads /etc/profile (and profile.d); bash -c alone does not: HOME points at a profile here."""
    (tmp_path / ".bash_profile").write_text("PATH=/opt/nowhere/bin:$PATH\n")
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    plain = subprocess.run(["bash", "-c", "echo $PATH"], env=env, capture_output=True, text=True).stdout
    login = subprocess.run(["bash", "-c", login_shell("echo $PATH")], env=env, capture_output=True, text=True).stdout
    assert "/opt/nowhere/bin" not in plain and "/opt/nowhere/bin" in login


@pytest.mark.parametrize(
    ("stderr", "name"),
    [
        ("bash: sbatch: command not found", "sbatch"),
        ("bash: line 1: squeue: command not found\n", "squeue"),
        ("sh: 1: scontrol: not found", None),
        ("", None),
    ],
)
def test_missing_command(stderr: str, name: str | None) -> None:
    assert missing_command(stderr) == name


def test_exit_127_names_the_missing_program_in_the_hint() -> None:
    result = RemoteResult("sbatch --version", 127, b"", b"bash: line 1: sbatch: command not found\n")
    with pytest.raises(TransportError) as caught:
        result.check()
    assert "sbatch" in caught.value.hint and "login shell" in caught.value.hint
