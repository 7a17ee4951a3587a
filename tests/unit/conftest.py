"""Fixtures that more than one unit test module uses. Their modules define them; this conftest makes them
visible to every module here, so none imports a fixture (an imported fixture looks unused, and each test's
argument of the same name redefines it). A module's own fixture of the same name still wins in it."""

from tests.unit.test_autostop_script import node
from tests.unit.test_wrapper_debug import run_dir

__all__ = ["node", "run_dir"]
