"""The one Jinja2 environment: StrictUndefined (a missing value is an error, never empty text)
and a ``shquote`` filter so that every value placed in shell text is quoted.

Defense in depth for line-based text (shell scripts, #SBATCH lines, comments, config files): a value
that reaches the text without ``shquote`` and holds a line break or another control character is
refused with an error, never rendered: in a comment or an #SBATCH line a newline starts a command,
whatever quotes surround it. ``shquote``'s own output may span lines (a multi-line ``job.command``):
inside single quotes that is data. ``word`` is for values that must stay one plain word (directives).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import jinja2

from cluster_tools.errors import ClusterToolsError


class UnsafeTemplateValue(ClusterToolsError):
    """A value that would change the structure of rendered text: refused, nothing is rendered."""


class ShellWord(str):
    """Text made by ``shquote``: exactly one shell word, whatever it holds (newlines included)."""


# C0 controls, DEL, and what other line splitters (Python's splitlines, some editors) read as a line break.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
# One word for a shell, a comment and an #SBATCH line alike: no blank, quote, '$', '`', ';', '#', '\\'.
_WORD = re.compile(r"[A-Za-z0-9._:/@%+=,~-]+")


def shquote(value: Any) -> ShellWord:
    """One shell word (shlex.quote); NUL is refused: no shell word or environment value can hold it."""
    text = str(value)
    if "\x00" in text:
        raise UnsafeTemplateValue(f"a NUL character in {text[:40]!r}: it cannot reach a shell")
    return ShellWord(shlex.quote(text))


def word(value: Any) -> str:
    """``value`` as it is when it is one plain word (letters, digits and ._:/@%+=,~-), else refused."""
    text = str(value)
    if not _WORD.fullmatch(text):
        raise UnsafeTemplateValue(f"{text[:60]!r} is not one plain word: it cannot go into a script's directives")
    return text


@jinja2.pass_environment
def _line_safe(env: jinja2.Environment, value: Any) -> Any:
    """Every ``{{ ... }}`` passes here: a control character outside ``shquote`` is refused (not in HTML,
    which autoescape guards)."""
    if env.autoescape or isinstance(value, ShellWord) or not isinstance(value, str):
        return value
    bad = _CONTROL.search(value)
    if bad:
        raise UnsafeTemplateValue(
            f"{value[:60]!r} holds the control character {bad.group()!r}: it would break the rendered text's lines",
            "use a value without it",
        )
    return value


def environment(*, line_safe: bool = True) -> jinja2.Environment:
    """The project's Jinja2 environment (packaged templates); `.overlay(loader=...)` roots it elsewhere.

    ``line_safe=False`` only for templates whose own macros render multi-line blocks (the cluster
    YAML): their values go through ``yaml_scalar``, which escapes every control character.
    """
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
        finalize=_line_safe if line_safe else None,
    )
    env.filters["shquote"] = shquote
    env.filters["word"] = word
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
