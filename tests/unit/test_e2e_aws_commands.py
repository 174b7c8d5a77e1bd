"""Every `pds-aws` command the real-AWS end-to-end plan prints is one the CLI accepts: the plan
is run by hand from its printout, so a command missing an argument would stop a paid run."""

from __future__ import annotations

import shlex
from collections.abc import Callable

import pytest

from pds_aws.cli import build_parser
from pds_aws.config import Config
from pds_aws.ops.e2e_aws import plan

ConfigFactory = Callable[..., Config]


def test_every_printed_pds_aws_command_parses(
    config_factory: ConfigFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = build_parser()
    commands = [
        command
        for step in plan(config_factory(), "pds.test.toml")
        for command in step.commands
        if command.startswith("pds-aws ")
    ]
    assert len(commands) >= 5
    for command in commands:
        try:
            args = parser.parse_args(shlex.split(command)[1:])
        except SystemExit:
            pytest.fail(f"`{command}`: {capsys.readouterr().err.strip()}")
        assert callable(args.handler), command


def test_smoke_names_the_stack_s_url_and_reads_the_bypass_key(
    config_factory: ConfigFactory,
) -> None:
    config = config_factory()
    (smoke,) = [s for s in plan(config, "pds.test.toml") if s.name == "smoke"]
    assert f"https://{config.pds.domain}" in smoke.commands[0]
    assert any("rate-limit bypass key" in call for call in smoke.aws_calls)
