"""The one Jinja2 environment: StrictUndefined (a missing value is an error, never empty text)
and a ``shquote`` filter so that every value placed in shell text is quoted."""

from __future__ import annotations

import re
import shlex
from typing import Any

import jinja2


def environment() -> jinja2.Environment:
    """The project's Jinja2 environment (packaged templates); `.overlay(loader=...)` roots it elsewhere."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("cluster_tools", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        # bash's ${#array[@]} would open a Jinja comment: our templates need no comments of Jinja's.
        comment_start_string="{#jinja#",
        comment_end_string="#jinja#}",
    )
    env.filters["shquote"] = lambda value: shlex.quote(str(value))
    env.filters["yaml_scalar"] = yaml_scalar
    return env


_PLAIN_YAML = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:-]*$")


def yaml_scalar(value: Any) -> str:
    """A YAML scalar that reads back as exactly ``str(value)``: plain when safe, else double-quoted."""
    import yaml

    text = str(value)
    if _PLAIN_YAML.fullmatch(text) and yaml.safe_load(text) == text:
        return text
    return _double_quoted(text)


def _double_quoted(text: str) -> str:
    """A YAML double-quoted scalar in printable ASCII: every other character escaped.

    Not json.dumps: YAML refuses a raw DEL and reads JSON's surrogate pairs (beyond U+FFFF) as halves.
    """
    out = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def render_template(template: str, **values: Any) -> str:
    """Render a packaged template; raises jinja2.UndefinedError on any missing value."""
    return environment().get_template(template).render(**values)
