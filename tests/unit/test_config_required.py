"""Commands that deploy, diff or destroy, or read a deployed stack's config, must name it.

Only local commands (`make run`, `pds-aws ... --local`) fall back to pds.example.toml.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pds_aws.cli import build_parser, main
from pds_aws.names import CONFIG_ENV, EXAMPLE_CONFIG_FILE

ROOT = Path(__file__).resolve().parents[2]


def make_dry_run(*arguments: str) -> subprocess.CompletedProcess[str]:
    """`make -n`: prints the recipes without running them (no install, no AWS)."""
    env = {k: v for k, v in os.environ.items() if k not in ("CONFIG", CONFIG_ENV, "MAKEFLAGS")}
    return subprocess.run(
        ["make", "-n", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("target", ["deploy", "diff", "destroy"])
def test_stack_targets_stop_without_config(target: str) -> None:
    result = make_dry_run(target)
    assert result.returncode != 0
    assert "no CONFIG" in result.stderr
    assert f"make {target} CONFIG=pds.toml" in result.stderr
    assert "cdk" not in result.stdout


@pytest.mark.parametrize("target", ["deploy", "diff", "destroy"])
def test_stack_targets_use_the_named_config(target: str) -> None:
    result = make_dry_run(target, "CONFIG=pds.toml")
    assert result.returncode == 0, result.stderr
    assert f"-c config=pds.toml {target}" in result.stdout
    assert EXAMPLE_CONFIG_FILE not in result.stdout


def test_local_run_keeps_the_example_as_default() -> None:
    result = make_dry_run("run")
    assert result.returncode == 0, result.stderr
    assert f"pds-aws local up --config {EXAMPLE_CONFIG_FILE}" in result.stdout


def test_cli_target_config_has_no_default() -> None:
    args = build_parser().parse_args(["status", "--stack", "MyPds"])
    assert args.config is None


def test_stack_command_without_config_names_the_fix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    assert main(["request-crawl", "--stack", "MyPds"]) == 2
    error = capsys.readouterr().err
    assert "no config" in error and "-c CONFIG" in error
    assert EXAMPLE_CONFIG_FILE not in error
