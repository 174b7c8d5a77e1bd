"""`pds-aws upgrade --to TAG [-c CONFIG | --local]`: the command around pds_aws.ops.upgrade."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from pds_aws.names import CONFIG_ENV, EXAMPLE_CONFIG_FILE
from pds_aws.ops.common import add_command, add_target_options, guarded
from pds_aws.ops.output import confirm
from pds_aws.ops.upgrade import Outcome, UpgradeResult, run_upgrade

if TYPE_CHECKING:
    from pds_aws.ops.common import Subparsers
    from pds_aws.ops.upgrade import Deployment

EXIT_CODES = {
    Outcome.UPGRADED: 0,
    Outcome.ROLLED_BACK: 1,
    Outcome.RESTORED: 1,
    Outcome.NOT_CONFIRMED: 1,
}


def say(step: str, message: str) -> None:
    print(f"==> [{step}] {message}", file=sys.stderr, flush=True)


def deployment_of(args: argparse.Namespace) -> Deployment:
    """The local runtime (`--local`) or the ECS service of the config's stack."""
    if args.local:
        from pds_aws.ops.upgrade_local import LocalDeployment

        config = args.config or os.environ.get(CONFIG_ENV) or EXAMPLE_CONFIG_FILE
        return LocalDeployment(args.state, config)
    from pds_aws.ops.common import config_of, stack_of, target_of
    from pds_aws.ops.upgrade_aws import EcsDeployment

    config = config_of(args)
    target = target_of(args)
    return EcsDeployment(stack_of(target), target, config.pds.image_version_tag)


def final_lines(result: UpgradeResult) -> list[str]:
    plan = result.plan
    lines = [f"result: {result.outcome.value}"]
    if result.outcome is Outcome.UPGRADED:
        lines.append(
            f"now running image {plan.target_tag} (@atproto/pds {plan.target_version}); set "
            f'[pds] image_tag = "{plan.target_tag}" in your config so the next deploy keeps it'
        )
    else:
        lines += [f"failed: {failure}" for failure in result.failures]
    if result.dropped is not None and result.outcome is Outcome.RESTORED:
        lines.append(f"dropped: {result.dropped.describe()}")
    return lines


def drill_if_current(deployment: Deployment, tag: str) -> bool:
    """`--drill-if-current`: when `tag` already runs, the restore drill alone (True); else
    nothing (False) and the upgrade proceeds. A pipeline drills on every run, upgrades only
    when the committed tag changed."""
    if deployment.current_tag() != tag:
        return False
    say("versions", f"image {tag} already runs on {deployment.name}: the restore drill only")
    deployment.drill(say)
    return True


def _upgrade(args: argparse.Namespace) -> int:
    """move the PDS to another image tag: drill, deploy, smoke, roll back on failure

    Upgrade the PDS to image TAG: show both @atproto/pds versions (warn on a minor-version
    jump), run a restore drill, deploy TAG and wait until stable, record the restore point (the
    old task's final sync), run smoke and doctor checks. On failure the previous tag is deployed
    again; when the new version changed the databases' schema, that first restores the backup to
    the restore point: the writes it drops are listed and confirmed first (--yes for scripts).
    Exit 0 upgraded, 1 rolled back or failed."""
    deployment = deployment_of(args)
    if args.drill_if_current and drill_if_current(deployment, args.to):
        print(f"result: image {args.to} already deployed; the restore drill passed", flush=True)
        return 0
    result = run_upgrade(
        deployment,
        args.to,
        confirm=lambda question: confirm(question, args.yes),
        say=say,
    )
    for line in final_lines(result):
        print(line, flush=True)
    return EXIT_CODES[result.outcome]


def add_commands(subparsers: Subparsers) -> None:
    parser = add_command(subparsers, "upgrade", guarded(_upgrade))
    parser.add_argument(
        "--to", required=True, metavar="TAG", help="the PDS image tag, e.g. 0.4.5035"
    )
    parser.add_argument("--yes", action="store_true", help="confirm a restore without asking")
    parser.add_argument(
        "--drill-if-current",
        action="store_true",
        help="when TAG already runs, run the restore drill only and exit 0 (the delivery "
        "pipeline's production step)",
    )
    add_target_options(parser)
