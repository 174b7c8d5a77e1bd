"""How operator commands print: aligned tables for people, JSON for scripts, confirmations."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows as an aligned text table with a header line; '(none)' when there are no rows."""
    if not rows:
        return "(none)"
    cells = [[str(row.get(col, "")) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(columns)]
    lines = ["  ".join(col.upper().ljust(w) for col, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def emit(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], as_json: bool) -> None:
    print(json.dumps(list(rows), indent=2) if as_json else format_table(rows, columns))


def confirm(
    question: str,
    assume_yes: bool,
    ask: Callable[[str], str] = input,
    interactive: bool | None = None,
) -> bool:
    """True when the operator agrees (or passed --yes); refuses when nobody can answer."""
    if assume_yes:
        return True
    if interactive is None:
        interactive = sys.stdin.isatty()
    if not interactive:
        print(f"{question}\nnot confirmed: stdin is not a terminal; pass --yes", file=sys.stderr)
        return False
    return ask(f"{question} [y/N] ").strip().lower() in {"y", "yes"}
