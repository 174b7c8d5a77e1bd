"""The relay watchdog in the template: its schedule, its least-privilege role, its alarms.

AWS documents used (not exercised here, no AWS):
- EventBridge scheduled rules, rate expressions: "Creating a rule that runs on a schedule"
  (EventBridge User Guide): `rate(15 minutes)`.
- Lambda's `Errors` metric counts invocations that end in a function error (AWS/Lambda,
  dimension FunctionName): "Types of metrics for Lambda functions" (Lambda Developer Guide).
- A function needs only logs:CreateLogStream and logs:PutLogEvents on its log group to log:
  "Using CloudWatch Logs with Lambda" / AWSLambdaBasicExecutionRole (Lambda Developer Guide).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from helpers import make_config
from pds_aws.infra.synth import synthesize
from pds_aws.relay.construct import HANDLER, RUNTIME_MODULES


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def _watchdog(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    [(name, function)] = [
        (k, r)
        for k, r in _resources(template, "AWS::Lambda::Function").items()
        if r["Properties"].get("Handler") == HANDLER
    ]
    return name, function


def test_the_watchdog_runs_on_the_configured_schedule(stack_template: dict[str, Any]) -> None:
    name, _ = _watchdog(stack_template)
    [rule] = [
        r
        for r in _resources(stack_template, "AWS::Events::Rule").values()
        if any(t["Arn"] == {"Fn::GetAtt": [name, "Arn"]} for t in r["Properties"]["Targets"])
    ]
    assert rule["Properties"]["ScheduleExpression"] == "rate(15 minutes)"


def test_the_watchdog_role_may_only_write_its_own_logs(stack_template: dict[str, Any]) -> None:
    _, function = _watchdog(stack_template)
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    assert not stack_template["Resources"][role]["Properties"].get("ManagedPolicyArns")
    policies = [
        p
        for p in _resources(stack_template, "AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"].get("Roles", [])
    ]
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    log_group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    assert statements == [
        {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [log_group, "Arn"]},
        }
    ]


def test_a_failed_run_and_a_warning_alarm_to_the_alarm_topic(
    stack_template: dict[str, Any],
) -> None:
    name, function = _watchdog(stack_template)
    [topic] = _resources(stack_template, "AWS::SNS::Topic")
    alarms = _resources(stack_template, "AWS::CloudWatch::Alarm").values()
    [errors] = [
        a
        for a in alarms
        if a["Properties"].get("MetricName") == "Errors"
        and a["Properties"]["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": name}}]
    ]
    assert errors["Properties"]["AlarmActions"] == [{"Ref": topic}]
    [warnings] = [a for a in alarms if a["Properties"].get("MetricName") == "RelayWarnings"]
    assert warnings["Properties"]["AlarmActions"] == [{"Ref": topic}]
    log_group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    [metric_filter] = [
        f
        for f in _resources(stack_template, "AWS::Logs::MetricFilter").values()
        if f["Properties"]["LogGroupName"] == {"Ref": log_group}
    ]
    assert metric_filter["Properties"]["FilterPattern"] == '"WARN relay:"'


def test_relay_check_zero_leaves_the_watchdog_out() -> None:
    template = synthesize(make_config(monitoring={"relay_check": 0}))
    assert not [
        r
        for r in _resources(template, "AWS::Lambda::Function").values()
        if r["Properties"].get("Handler") == HANDLER
    ]


def test_the_function_asset_holds_only_the_standard_library_runtime(tmp_path: Path) -> None:
    """Staged as `cdk synth` stages it, the asset imports with nothing but the standard library."""
    from pds_aws.config import load_config
    from pds_aws.infra.synth import build_app

    outdir = tmp_path / "cdk.out"
    app, stack = build_app(
        load_config(Path(__file__).parents[2] / "pds.example.toml"), outdir=str(outdir)
    )
    template = app.synth().get_stack_by_name(stack.stack_name).template
    _, function = _watchdog(template)
    asset = outdir / ("asset." + function["Properties"]["Code"]["S3Key"].removesuffix(".zip"))
    files = sorted(str(p.relative_to(asset)) for p in asset.rglob("*") if p.is_file())
    assert files == sorted(
        ["pds_aws/__init__.py", "pds_aws/errors.py"]
        + [f"pds_aws/relay/{m}" for m in RUNTIME_MODULES]
    )
    # -I: isolated (no site-packages, no user path); -S: no site module at all.
    probe = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            "import sys; sys.path.insert(0, '.'); import pds_aws.relay.watchdog",
        ],
        cwd=asset,
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    json.dumps(files)  # the listing is plain data


def test_the_watchdog_is_priced(stack_template: dict[str, Any], example_config: Any) -> None:
    from pds_aws.cost.model import estimate

    result = estimate(stack_template, example_config)
    assert not result.unpriced
    name, _ = _watchdog(stack_template)
    priced = {logical_id for line in result.lines for logical_id in line.logical_ids}
    free = {logical_id for logical_id, _, _ in result.free}
    assert name in priced | free
