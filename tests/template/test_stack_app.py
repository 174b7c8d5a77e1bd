"""The CDK CLI's entry (app.py with -c config=PATH) and the `--summary` entry of make run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import EXAMPLE_CONFIG, PROJECT_ROOT
from pds_aws.infra import synth

APP_TIMEOUT_S = 300


def _run_app(config_path: Path, outdir: Path) -> subprocess.CompletedProcess[str]:
    # What `cdk synth -c config=PATH` does: run the "app" command with the context and the
    # output directory in the environment.
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps({"config": str(config_path)}),
    }
    return subprocess.run(
        [sys.executable, "app.py"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=APP_TIMEOUT_S,
        check=False,
    )


def test_cdk_json_runs_app_py_with_the_venv_python() -> None:
    cdk_json = json.loads((PROJECT_ROOT / "cdk.json").read_text(encoding="utf-8"))
    assert cdk_json["app"] == ".venv/bin/python app.py"


def test_app_synthesizes_the_config_named_by_context(tmp_path: Path) -> None:
    config = tmp_path / "pds.toml"
    config.write_text(
        EXAMPLE_CONFIG.read_text(encoding="utf-8").replace(
            'stack_name = "BlueskyPds"', 'stack_name = "OtherPds"'
        ),
        encoding="utf-8",
    )
    result = _run_app(config, tmp_path / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    template = json.loads((tmp_path / "out" / "OtherPds.template.json").read_text())
    assert any(r["Type"] == "AWS::ECS::Service" for r in template["Resources"].values())


def test_app_stops_with_the_config_message_on_a_bad_file(tmp_path: Path) -> None:
    result = _run_app(tmp_path / "missing.toml", tmp_path / "out")
    assert result.returncode == 2
    assert "missing.toml: config file not found" in result.stderr


def test_summary_names_the_template_and_counts_resources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = synth.main(["--config", str(EXAMPLE_CONFIG), "--outdir", str(tmp_path), "--summary"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"template: {tmp_path / 'BlueskyPds.template.json'}" in out
    assert (tmp_path / "BlueskyPds.template.json").is_file()
    assert "AWS::ECS::TaskDefinition" in out and "resources" in out
