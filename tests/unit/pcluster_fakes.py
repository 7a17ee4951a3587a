"""Our pcluster transport (cluster_tools.transport.pcluster) replaced function by function, for the services' tests
at that boundary: each fake records its calls and answers with the records the transport builds."""

from __future__ import annotations

from collections.abc import Callable

from cluster_tools.transport import pcluster as pc


class Fake:
    """One function of our pcluster transport: records its calls, answers in turn (the last one repeats)."""

    def __init__(self, *answers):
        self.answers, self.calls = list(answers), []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer


def transport_installer(monkeypatch) -> Callable[..., Fake]:
    """``install(name, *answers)`` puts a Fake in place of ``pc.<name>`` for the test; stack events start empty."""

    def install(name: str, *answers) -> Fake:
        fake = Fake(*answers)
        monkeypatch.setattr(pc, name, fake)
        return fake

    install("get_cluster_stack_events", ([], None))  # no events unless a test gives some
    return install
