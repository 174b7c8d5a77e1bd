"""`make e2e-aws CONFIG=...`: the real-AWS end-to-end of a test-mode stack, step by step.

It deploys, proves the PDS works, crashes the task the hard way and checks that nothing
acknowledged was lost, runs a drill and destroys the stack. Only a `test`-mode config is
accepted: a prod stack retains its data and must never be destroyed by a test.

`--plan` (`make e2e-aws PLAN=1`) prints every step with the AWS calls it makes, and makes
none: what a reviewer checks before spending money, and what the unit tests check.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from pds_aws.config import Config, ConfigError, load_config


@dataclass(frozen=True)
class Step:
    """One step, in the order `render` prints it: `1. name (~minutes min): what`."""

    name: str
    # On a fresh account (first deploy: certificate validation, two CodeBuild image builds,
    # the grace period of the first task).
    minutes: float
    what: str
    commands: tuple[str, ...]
    aws_calls: tuple[str, ...]


def refuse_prod(config: Config) -> None:
    if config.is_prod:
        raise ConfigError(
            f"{config.source}: [aws] mode = 'prod': the end-to-end run destroys its stack at "
            "the end, and a prod stack holds real data. Use a config with mode = 'test' (and "
            "its own domain and stack_name)."
        )


def plan(config: Config, config_path: str) -> list[Step]:
    refuse_prod(config)
    stack = config.aws.stack_name
    target = f"--config {config_path}"
    domain = config.pds.domain
    return [
        Step(
            "deploy",
            25.0,
            "deploy the stack and wait until the service has a healthy task",
            (f"make deploy CONFIG={config_path}", f"pds-aws status {target}"),
            (
                "codebuild:CreateProject/StartBuild/BatchGetBuilds/DeleteProject (preflight)",
                f"cloudformation:CreateChangeSet/ExecuteChangeSet {stack}",
                f"cloudformation:DescribeStacks {stack} (until CREATE_COMPLETE)",
                "ecs:DescribeServices (until runningCount 1, the target healthy)",
            ),
        ),
        Step(
            "smoke",
            2.0,
            "routes, websocket, a read and a write with a real client",
            (f"pds-aws smoke https://{domain} {target}",),
            (
                f"cloudformation:DescribeStacks {stack} (outputs)",
                "secretsmanager:GetSecretValue (admin password, rate-limit bypass key)",
            ),
        ),
        Step(
            "write",
            2.0,
            "create an account and posts with the atproto client; remember every post's URI",
            (f"pds-aws admin account create e2e.{domain} --email e2e@{domain} {target}",),
            ("secretsmanager:GetSecretValue (admin password)",),
        ),
        Step(
            "crash",
            1.0,
            "kill -9 every process of the task through ECS Exec (StopTask would send SIGTERM "
            "first, a clean stop)",
            (f"pds-aws shell {target} --container pds --command 'kill -9 -1'",),
            ("ecs:ListTasks", "ecs:ExecuteCommand (container pds)", "ssmmessages (session)"),
        ),
        Step(
            "recover",
            12.0,
            "wait for the replacement task (restore from the backup) and read back every post",
            (f"pds-aws status {target}",),
            ("ecs:DescribeServices (until a new task is healthy)", "ecs:DescribeTasks"),
        ),
        Step(
            "drill",
            10.0,
            "run a restore drill of the backup",
            (f"pds-aws backup drill {target}",),
            ("ecs:RunTask (drill task definition)", "ecs:DescribeTasks", "logs:GetLogEvents"),
        ),
        Step(
            "destroy",
            15.0,
            "delete the stack (test mode: buckets, key, secrets and logs go with it)",
            (f"make destroy CONFIG={config_path}",),
            (f"cloudformation:DeleteStack {stack}", f"cloudformation:DescribeStacks {stack}"),
        ),
    ]


def run_minutes(steps: Sequence[Step]) -> float:
    return sum(step.minutes for step in steps)


def run_cost_usd(config: Config, minutes: float) -> float:
    """The stack's fixed monthly cost for `minutes`, plus one deploy's image builds."""
    from pds_aws.cost.model import estimate_config

    estimate = estimate_config(config)
    # CodeBuild's line is a monthly figure for `deploys_per_month` deploys, free tier applied:
    # one deploy's builds at list price instead.
    builds = sum(
        line.quantity * line.unit_price
        for line in estimate.lines
        if line.price_key.startswith("codebuild_")
    )
    deploys = config.cost.deploys_per_month
    per_deploy = builds / deploys if deploys else 0.0
    return estimate.fixed_monthly * minutes / (estimate.hours_per_month * 60) + per_deploy


def render(steps: Sequence[Step], cost_usd: float | None) -> str:
    lines = []
    for number, step in enumerate(steps, start=1):
        lines.append(f"{number}. {step.name} (~{step.minutes:g} min): {step.what}")
        lines += [f"     $ {command}" for command in step.commands]
        lines += [f"     aws {call}" for call in step.aws_calls]
    total = run_minutes(steps)
    summary = f"about {total:g} minutes"
    if cost_usd is not None:
        summary += f", about ${cost_usd:.2f} of AWS charges"
    lines.append(f"whole run: {summary}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pds_aws.ops.e2e_aws", description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--plan", action="store_true", help="print the steps, make no call")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        steps = plan(config, args.config)
    except ConfigError as exc:
        print(f"e2e-aws: {exc}", file=sys.stderr)
        return 2
    print(render(steps, run_cost_usd(config, run_minutes(steps))))
    if args.plan:
        return 0
    print("e2e-aws: the run itself is not automated yet; follow the steps above", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
