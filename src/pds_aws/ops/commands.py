"""`pds-aws` operator subcommands (admin, request-crawl, status, backup, smoke, shell, logs)."""

from __future__ import annotations

import argparse
from typing import Any


def add_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Register the operator subcommands on the `pds-aws` parser."""
