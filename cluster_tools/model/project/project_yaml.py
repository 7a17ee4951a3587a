"""Where each key of a project file sits: the YAML loader that reads clustertools.yaml safely, and the
positions that let a message name a key by file and line (``clustertools.yaml:7: parallelcluster.os``).

Pure: text in, nodes and lines out. The model itself lives in cluster_tools.model.project.project_config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

MAX_YAML_DEPTH = 50  # the schema is 4 levels deep; Python's recursion limit is near 1,000


class RefusedYAML(yaml.MarkedYAMLError):
    """Valid YAML that a project file may not use (it would cost time or stack before any check)."""


class ProjectLoader(yaml.SafeLoader):
    """SafeLoader with constructors of its own: pcluster's yaml_load patches SafeLoader's mapping
    constructor process-wide, which would change how a project file loads once pcluster ran.

    It refuses an alias of a mapping or list (a "billion laughs" of nested aliases expands to more
    nodes than any walk can visit) and nesting deeper than MAX_YAML_DEPTH, while composing.
    """

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]  # types-PyYAML leaves peek_event unannotated
            if not isinstance(self.anchors.get(event.anchor), (yaml.ScalarNode, type(None))):
                raise RefusedYAML(
                    None,
                    None,
                    f"alias *{event.anchor} repeats a mapping or list: aliases "
                    "(and << merges) of those are not allowed here",
                    event.start_mark,
                    "write the values out in full",
                )
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise RefusedYAML(
                    None,
                    None,
                    f"nested deeper than {MAX_YAML_DEPTH} levels",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]  # unannotated in types-PyYAML
                    "a project file is a few levels deep: `clustertools init` writes an example",
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


ProjectLoader.yaml_constructors = dict(yaml.SafeLoader.yaml_constructors)
ProjectLoader.add_constructor(  # type: ignore[type-var]  # types-PyYAML wants a Loader as self; PyYAML passes one
    "tag:yaml.org,2002:map", yaml.constructor.SafeConstructor.construct_yaml_map
)


def dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int:
    """1-based line of the deepest node along ``loc`` (the parent's line for a missing key)."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    child, line = value, key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def node_at(node: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((value for key, value in node.value if key.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return None
    return node


def unquoted_hint(node: yaml.Node | None) -> str | None:
    """Why a value written as text reached a text field as something else (YAML 1.1 reads unquoted
    ``1:30:00`` as the number 5400, ``yes`` as true): say what it became and how to quote it."""
    if not isinstance(node, yaml.ScalarNode) or node.style or node.tag == "tag:yaml.org,2002:str":
        return None
    value = yaml.load(node.value, Loader=ProjectLoader)
    kind = {bool: "the boolean", int: "the number", float: "the number", type(None): "null"}.get(type(value), "a date")
    base60 = " (h:mm:ss is read in base 60)" if ":" in node.value and isinstance(value, (int, float)) else ""
    shown = "" if value is None else f" {value}"
    return f'{node.value} unquoted is {kind}{shown} in YAML{base60}: quote it: "{node.value}"'


def first_duplicate_key(node: yaml.Node | None, loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], int] | None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if key.value in seen:
                return (*loc, key.value), key.start_mark.line + 1
            seen.add(key.value)
            found = first_duplicate_key(value, (*loc, key.value))
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found = first_duplicate_key(item, (*loc, index))
            if found:
                return found
    return None


@dataclass(frozen=True)
class ProjectSource:
    """Where a project was read from. ``where(loc)`` names a key as every project message does; a project
    built in code (no YAML) names the file without a line."""

    name: str
    root: yaml.Node | None = None

    def where(self, loc: tuple[Any, ...]) -> str:
        if self.root is None:
            return f"{self.name}: {dotted(loc)}"
        return f"{self.name}:{line_of(self.root, loc)}: {dotted(loc)}"
