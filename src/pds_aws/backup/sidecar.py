"""The sidecar's subcommands (filled in next)."""

from __future__ import annotations

import argparse
import sys

from pds_aws.backup.settings import Settings


def _not_yet(name: str) -> int:
    print(f"ERROR backup: `{name}` is not implemented yet", file=sys.stderr, flush=True)
    return 1


def run(settings: Settings, args: argparse.Namespace) -> int:
    return _not_yet("run")


def health(settings: Settings, args: argparse.Namespace) -> int:
    return _not_yet("health")


def drill(settings: Settings, args: argparse.Namespace) -> int:
    return _not_yet("drill")


def restore_at_command(settings: Settings, args: argparse.Namespace) -> int:
    return _not_yet("restore-at")


def status(settings: Settings, args: argparse.Namespace) -> int:
    return _not_yet("status")
