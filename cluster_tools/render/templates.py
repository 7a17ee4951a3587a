"""The one Jinja2 environment: StrictUndefined (a missing value is an error, never empty text)
and a ``shquote`` filter so that every value placed in shell text is quoted."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import jinja2


def _environment() -> jinja2.Environment:
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
    if _PLAIN_YAML.match(text) and yaml.safe_load(text) == text:
        return text
    return json.dumps(text)  # a JSON string is a valid YAML double-quoted scalar


def render_template(template: str, **values: Any) -> str:
    """Render a packaged template; raises jinja2.UndefinedError on any missing value."""
    return _environment().get_template(template).render(**values)
