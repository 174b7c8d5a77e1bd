"""`pds-aws`: the operator's one command.

Each area registers its own subcommands (`add_commands(subparsers)`), so this module only
composes them: local runtime (pds_aws.local.commands), operations (pds_aws.ops.commands) and
the cost model (pds_aws.cost.commands). A handler returns the process exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from pds_aws.errors import ConfigError, PdsAwsError

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    from pds_aws.cost.commands import add_commands as add_cost
    from pds_aws.doctor.commands import add_commands as add_doctor
    from pds_aws.local.commands import add_commands as add_local
    from pds_aws.ops.commands import add_commands as add_ops

    parser = argparse.ArgumentParser(
        prog="pds-aws",
        description="Deploy-time and day-two operations for a Bluesky PDS on AWS or run locally.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (add_local, add_ops, add_doctor, add_cost):
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    # Ours and AWS's are reported in one line; any other exception is a bug: its traceback shows.
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return handler(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (PdsAwsError, ClientError, BotoCoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
