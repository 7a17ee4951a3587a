"""What the `clustertools` process does before and after its command: only what makes every command faster."""

from __future__ import annotations

import gc
import importlib
import importlib.util  # Python does not import it at startup; a .pth file may (an editable install's did, hiding this)
import sys
import types


def defer_invoke() -> None:
    """paramiko's config module imports invoke (about 40 ms, half of importing paramiko) for one rare use: running an
    ssh_config ``Match exec`` command. Every command that opens SSH paid it (issue 16). In this process, which is
    ours (never in the Python API's, which is the user's), ``invoke`` is a stand-in module until something reads
    an attribute of it; then the real invoke is imported and answers. (The standard library's LazyLoader does not
    help here: the import system itself reads the module's ``__spec__``, which loads it at once.)"""
    if "invoke" in sys.modules or importlib.util.find_spec("invoke") is None:
        return
    stand_in = types.ModuleType("invoke", "stand-in for invoke until it is used (cluster_tools.cli.startup)")

    def load_on_use(name: str):
        if sys.modules.get("invoke") is stand_in:
            del sys.modules["invoke"]
        return getattr(importlib.import_module("invoke"), name)

    stand_in.__getattr__ = load_on_use  # type: ignore[method-assign]  # PEP 562: only attributes it lacks
    sys.modules["invoke"] = stand_in


def freeze_at_exit() -> None:
    """The command is done and this process ends. Its objects (every imported module, pydantic's schemas, a status's
    10,000 subjects) are still freed as always at exit, by reference counting: finalizers, atexit handlers and thread
    joins all run. But the interpreter's last cyclic collections would walk all of them first, about 30 ms after
    every command (issue 16); frozen (gc.freeze), the collector leaves them be."""
    gc.freeze()
