"""What each CodeBuild step of the pipeline runs: plain command lists, kept apart from CDK.

Each step starts from the user's repository (the source) on a fresh CodeBuild machine with
Python, make and git, and installs what it needs from the project's lock files, as CI does:
`make install` for the synth (the CDK CLI and the tests need Node too), `make install-python`
for the steps that only run `pds-aws`. Nothing here reimplements an operator command: the steps
call `pds-aws smoke` and `pds-aws upgrade`, as an operator would.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from pds_aws.config import Config
from pds_aws.pipeline.stage_configs import config_of_test_stage

PDS_AWS = ".venv/bin/pds-aws"
# Where `cdk synth` writes the cloud assembly the pipeline deploys from.
ASSEMBLY_DIRECTORY = "cdk.out"
INSTALL_ALL = ("make install",)
INSTALL_PYTHON = ("make install-python",)


@dataclass(frozen=True)
class Step:
    """One CodeBuild step: its id in the pipeline, install commands and commands."""

    name: str
    install: tuple[str, ...]
    commands: tuple[str, ...]


def synth_step(config: Config) -> Step:
    """Stage 1: the unit and template tests (cdk-nag, cfn-lint, checkov included), then synth."""
    return Step(
        "Synth",
        INSTALL_ALL,
        (
            ".venv/bin/pytest -q tests/unit tests/template",
            f"make synth CONFIG={shlex.quote(config.pipeline.config_file)}",
        ),
    )


def test_smoke_step(config: Config) -> Step:
    """Stage 2, after the test stack's deploy: `pds-aws smoke` against it, through its edge."""
    test = config_of_test_stage(config)
    return Step("SmokeTest", INSTALL_PYTHON, (f"{PDS_AWS} smoke https://{test.pds.domain}",))


def test_teardown_step(config: Config) -> Step:
    """Stage 2, last: delete the test stack (test mode: nothing is retained), so it costs only
    while a run uses it. The next run deploys it afresh."""
    test = config_of_test_stage(config)
    from pds_aws.direct.health_stack import HEALTH_REGION, health_stack_name

    stacks = [(test.aws.stack_name, test.aws.region)]
    if test.is_direct:
        stacks.append((health_stack_name(test), HEALTH_REGION))
    commands = []
    for name, region in stacks:
        where = f"--stack-name {shlex.quote(name)} --region {region}"
        commands += [
            f"aws cloudformation delete-stack {where}",
            f"aws cloudformation wait stack-delete-complete {where}",
        ]
    return Step("DeleteTestStack", (), tuple(commands))


def upgrade_step(config: Config) -> Step:
    """Stage 4, before the production stack's deploy: `pds-aws upgrade` to the committed image
    tag (restore drill, deploy, restore point, smoke and doctor, rollback on failure). When that
    tag already runs, the restore drill alone (`--drill-if-current`). Never `--yes`: a rollback
    that would drop writes stops the pipeline instead, for the operator to decide."""
    config_file = shlex.quote(config.pipeline.config_file)
    return Step(
        "Upgrade",
        INSTALL_PYTHON,
        (
            f"{PDS_AWS} upgrade --to {config.pds.image_version_tag} -c {config_file} "
            "--drill-if-current",
        ),
    )


def prod_smoke_step(config: Config) -> Step:
    """Stage 4, after the production stack's deploy: `pds-aws smoke` with the stack's
    rate-limit bypass key (read from Secrets Manager through `-c`)."""
    config_file = shlex.quote(config.pipeline.config_file)
    return Step(
        "SmokeProduction",
        INSTALL_PYTHON,
        (f"{PDS_AWS} smoke https://{config.pds.domain} -c {config_file}",),
    )
