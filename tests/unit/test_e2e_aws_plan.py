"""`make e2e-aws PLAN=1`: the real-AWS end-to-end's steps and AWS calls, without making them."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import make_config
from pds_aws.config import ConfigError
from pds_aws.ops.e2e_aws import main, plan, render, run_minutes


def test_the_plan_deploys_checks_crashes_recovers_drills_and_destroys() -> None:
    steps = plan(make_config(), "pds.test.toml")
    assert [s.name for s in steps] == [
        "deploy",
        "smoke",
        "write",
        "crash",
        "recover",
        "drill",
        "destroy",
    ]
    crash = steps[3]
    # A crash, not a clean stop: StopTask sends SIGTERM first.
    assert any("ecs:ExecuteCommand" in call for call in crash.aws_calls)
    assert not any("StopTask" in call for step in steps for call in step.aws_calls)
    assert "kill -9" in " ".join(crash.commands)
    assert steps[0].commands[0] == "make deploy CONFIG=pds.test.toml"
    assert steps[-1].commands == ("make destroy CONFIG=pds.test.toml",)


def test_the_printed_plan_names_every_step_its_calls_and_the_total() -> None:
    steps = plan(make_config(), "pds.test.toml")
    text = render(steps, cost_usd=1.234)
    for step in steps:
        assert f"{step.name} (~" in text
        for call in step.aws_calls:
            assert f"aws {call}" in text
    assert f"whole run: about {run_minutes(steps):g} minutes, about $1.23" in text


def test_a_prod_config_is_refused_before_any_step() -> None:
    with pytest.raises(ConfigError, match="mode = 'prod'"):
        plan(make_config(aws={"mode": "prod"}), "pds.prod.toml")


def test_the_command_refuses_prod_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = Path(__file__).resolve().parents[2] / "pds.example.toml"
    prod = tmp_path / "prod.toml"
    prod.write_text(
        example.read_text(encoding="utf-8").replace('mode = "test"', 'mode = "prod"'),
        encoding="utf-8",
    )
    assert main(["--config", str(prod), "--plan"]) == 2
    assert "mode = 'prod'" in capsys.readouterr().err
