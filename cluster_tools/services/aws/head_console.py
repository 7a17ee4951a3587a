"""The head node's SSH host keys from its EC2 console output, read for ``up`` before the first SSH.

cloud-init prints the keys in its final stage (keys-to-console), after the user data that runs the
ParallelCluster bootstrap: the stack may be CREATE_COMPLETE a little before they are on the console. And
without ``Latest=True`` EC2 answers with the buffer posted shortly after boot, which never holds them; with
it (Nitro instances) the console as it is now. So: ask for the latest output, and ask again every
``poll_seconds`` until the keys are there or ``wait_seconds`` have passed; then fall back to trust on
first use, and say so.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cluster_tools.model.aws.console_host_keys import ConsoleHostKeys, keys_block_unfinished, parse_console_host_keys
from cluster_tools.model.progress import Progress


@dataclass(frozen=True)
class ConsoleWait:
    """How long to wait for cloud-init to print the keys. ``sleep`` is injectable so tests never wait;
    ``on_progress`` gets one line when the wait starts (a person should know why ``up`` is still busy)."""

    wait_seconds: float = 300.0
    poll_seconds: float = 15.0
    sleep: Callable[[float], None] = time.sleep
    on_progress: Progress | None = None


def read_console_host_keys(
    ec2: Any, instance_id: str | None, notes: list[str], wait: ConsoleWait = ConsoleWait()
) -> ConsoleHostKeys:
    """The host keys (or fingerprints) the instance's console printed; none, with a note in ``notes`` saying
    why and that the key is trusted on first use, when the console cannot be read or never printed them."""
    if ec2 is None or instance_id is None:
        return ConsoleHostKeys()
    reader = _ConsoleReader(ec2, instance_id)
    waited = 0.0
    while True:
        try:
            text = reader.read()
        except Exception as exc:  # botocore ClientError/EndpointConnectionError: fall back to first use
            notes.append(
                f"cannot read the console output of {instance_id} ({_error_name(exc)}): host key trusted "
                "on first use, and pinned then"
            )
            return ConsoleHostKeys()
        keys = parse_console_host_keys(text)
        if keys.keys or (keys.fingerprints and not keys_block_unfinished(text)) or waited >= wait.wait_seconds:
            break
        if waited == 0 and wait.on_progress is not None:
            wait.on_progress(
                f"waiting up to {_duration(wait.wait_seconds)} for the console output of {instance_id} "
                "to show its SSH host keys (cloud-init prints them at the end of the bootstrap)"
            )
        wait.sleep(wait.poll_seconds)
        waited += wait.poll_seconds
    if not keys.found:
        notes.append(
            f"the console output of {instance_id} showed no SSH host keys in {_duration(waited)}: host key "
            "trusted on first use, and pinned then"
        )
    return keys


class _ConsoleReader:
    """``get_console_output`` with ``Latest=True``. When the first such read fails but one without it works
    (Latest needs a Nitro instance), the buffered output is all there is: read it from then on."""

    def __init__(self, ec2: Any, instance_id: str) -> None:
        self.ec2, self.instance_id = ec2, instance_id
        self.latest: bool | None = None  # not known before the first read

    def read(self) -> str:
        if self.latest is None:
            try:
                text, self.latest = self._read(Latest=True), True
                return text
            except Exception:
                text, self.latest = self._read(), False  # fails too: the caller names this error
                return text
        return self._read(Latest=True) if self.latest else self._read()

    def _read(self, **latest: bool) -> str:
        answer = self.ec2.get_console_output(InstanceId=self.instance_id, **latest)
        return console_text(answer.get("Output") or "")


def console_text(output: str) -> str:
    """boto3 hands the console output decoded from base64 already; an older or raw client may not."""
    if "-----BEGIN SSH HOST KEY" in output:
        return output
    try:
        return base64.b64decode(output, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return output


def _error_name(exc: Exception) -> str:
    """``ClientError UnauthorizedOperation``: the code says what to fix (here: ec2:GetConsoleOutput)."""
    response = getattr(exc, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return f"{type(exc).__name__} {code}" if code else type(exc).__name__


def _duration(seconds: float) -> str:
    return f"{int(seconds // 60)} min" if seconds >= 60 and seconds % 60 == 0 else f"{int(seconds)} s"
