"""`pds-aws doctor`: run every check against the local runtime or a deployed stack."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING

from pds_aws.doctor.checks import Doctor, run_all
from pds_aws.doctor.report import exit_code, format_results, summary
from pds_aws.ops.common import (
    add_command,
    add_target_options,
    backup_env_of,
    config_of,
    guarded,
    target_of,
)
from pds_aws.ops.status import parse_duration

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

OUTPUT_SMTP_SECRET = "SmtpUrlSecretArn"


def _stack_smtp_url(doc: Doctor, stack_name: str) -> str | None:
    """The SMTP URL the task gets, from the secret the stack names in its outputs."""
    from pds_aws.ops.target import outputs_by_key

    outputs = outputs_by_key(
        doc.aws_session.client("cloudformation").describe_stacks(StackName=stack_name)
    )
    arn = outputs.get(OUTPUT_SMTP_SECRET)
    if not arn:
        return None
    secret = doc.aws_session.client("secretsmanager").get_secret_value(SecretId=arn)
    return str(secret["SecretString"])


def build_doctor(args: argparse.Namespace) -> tuple[Doctor, str]:
    """The checks' view of the target, and the From address of a test message."""
    from pds_aws.ops.status import read_backup_status
    from pds_aws.ops.target import aws_session

    config = config_of(args)
    target = target_of(args)
    env = backup_env_of(target) if (target.is_local or target.stack) else {}
    relays = list(args.relay) if args.relay else ([] if target.is_local else config.pds.crawlers)
    doc = Doctor(
        target=target,
        domain=target.hostname if target.is_local else config.pds.domain,
        hosted_zone=config.pds.hosted_zone_name,
        region=config.aws.region,
        relays=relays,
        account_limit=config.relay.account_limit,
        lag_threshold_s=(
            parse_duration(args.max_relay_lag)
            if args.max_relay_lag
            else config.relay.lag_threshold_minutes * 60.0
        ),
        email_to=args.email,
        backup_status=(lambda: read_backup_status(env)) if env else None,
    )
    if target.is_local:
        assert target.local_state is not None
        doc.smtp_url = target.local_state.smtp_url or None
    else:
        doc.aws_session = aws_session(args.profile, args.region or config.aws.region)
        if args.email:
            doc.smtp_url = _stack_smtp_url(doc, target.name)
    return doc, config.pds.email_from_address


def _doctor(args: argparse.Namespace) -> int:
    """check DNS, TLS, routes, firehose, e-mail, relays and backups, with fixes

    Run the checks self-hosted PDSes fail most: DNS for the domain and a handle subdomain,
    TLS, the PDS's HTTP routes (health, describeServer, OAuth metadata, atproto-did on a
    handle's host, robots, the allow-list), the subscribeRepos websocket, SES and a test
    message, each relay's view of this host and of every account, and backup freshness. Each
    check prints pass, warn, fail or skipped with the reason; a failure also prints its fix.
    Exit 1 when a check fails. Against the local runtime, checks that need public DNS, a public
    certificate or SES are skipped."""
    for option in ("max_backup_age", "max_relay_lag"):
        try:
            if getattr(args, option):
                parse_duration(getattr(args, option))
        except ValueError as exc:
            print(f"error: --{option.replace('_', '-')}: {exc}", file=sys.stderr)
            return 2
    max_age = parse_duration(args.max_backup_age)
    doc, sender = build_doctor(args)
    results = run_all(doc, sender=sender, max_backup_age_s=max_age)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        print("\n".join(format_results(results)))
        print(summary(results))
    return exit_code(results)


def add_commands(subparsers: Subparsers) -> None:
    parser = add_command(subparsers, "doctor", guarded(_doctor))
    parser.add_argument("--email", metavar="ADDRESS", help="send a test message to ADDRESS")
    parser.add_argument(
        "--relay",
        action="append",
        metavar="URL",
        help="check this relay instead of the config's crawlers (repeatable)",
    )
    parser.add_argument(
        "--max-backup-age",
        default="5m",
        metavar="DURATION",
        help="largest acceptable backup lag, e.g. 90s, 15m (default: 5m)",
    )
    parser.add_argument(
        "--max-relay-lag",
        metavar="DURATION",
        help="a commit the relay lacks for longer fails (default: [relay] lag_threshold_minutes)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    add_target_options(parser)
