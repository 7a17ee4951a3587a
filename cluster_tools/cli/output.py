"""Printing for people (rich tables) and for programs (--json). rich is imported only when used."""

from __future__ import annotations

import json
from typing import Any, Sequence

import click


def print_json(data: Any) -> None:
    """Indented for a person at a terminal; compact when piped (10x faster, far less memory at 100k)."""
    import sys

    pretty = sys.stdout.isatty()
    click.echo(json.dumps(data, indent=2 if pretty else None, sort_keys=pretty, default=str))


PLAIN_TABLE_ROWS = 500  # beyond this rich's layout costs seconds: plain aligned text instead


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    if len(rows) > PLAIN_TABLE_ROWS:
        _print_plain(title, columns, rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    Console(soft_wrap=True).print(table)


def _print_plain(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max([len(col), *(len(r[i]) for r in cells)]) for i, col in enumerate(columns)]
    lines = [title] if title else []
    lines.append("  ".join(col.ljust(w) for col, w in zip(columns, widths)).rstrip())
    lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)
    click.echo("\n".join(lines))
