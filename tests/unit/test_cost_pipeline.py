"""The pipeline's price: CodeBuild minutes per step and CodePipeline action minutes per run,
computed by hand from the estimates and the price data, on a hand-written pipeline resource."""

from __future__ import annotations

from typing import Any

import pytest

from helpers import make_config
from pds_aws.cost.model import estimate
from pds_aws.cost.pipeline import STEP_MINUTES
from pds_aws.cost.prices import load_prices

CONNECTION = (
    "arn:aws:codestar-connections:us-east-2:123456789012:connection/"
    "1234abcd-12ab-34cd-56ef-1234567890ab"
)


def _action(name: str, category: str, provider: str, project: str | None = None) -> Any:
    action: dict[str, Any] = {
        "Name": name,
        "ActionTypeId": {"Category": category, "Owner": "AWS", "Provider": provider},
    }
    if project:
        action["Configuration"] = {"ProjectName": {"Ref": project}}
    return action


def _template(pipeline_type: str, *, unknown_step: bool = False) -> dict[str, Any]:
    project = {
        "Type": "AWS::CodeBuild::Project",
        "Properties": {
            "Environment": {"Type": "LINUX_CONTAINER", "ComputeType": "BUILD_GENERAL1_SMALL"},
            "Source": {"Type": "CODEPIPELINE"},
        },
    }
    build = [_action("Synth", "Build", "CodeBuild", "SynthProject")]
    if unknown_step:
        build.append(_action("Lint", "Build", "CodeBuild", "SynthProject"))
    stages = [
        {"Name": "Source", "Actions": [_action("src", "Source", "CodeStarSourceConnection")]},
        {"Name": "Build", "Actions": build},
        {
            "Name": "Production",
            "Actions": [
                _action("Upgrade", "Build", "CodeBuild", "UpgradeProject"),
                _action("Pds.Prepare", "Deploy", "CloudFormation"),
                _action("Pds.Deploy", "Deploy", "CloudFormation"),
            ],
        },
        {"Name": "Approve", "Actions": [_action("Ok", "Approval", "Manual")]},
    ]
    return {
        "Resources": {
            "Pipeline": {
                "Type": "AWS::CodePipeline::Pipeline",
                "Properties": {"PipelineType": pipeline_type, "Stages": stages},
            },
            "SynthProject": project,
            "UpgradeProject": project,
        }
    }


def _config(runs: float, free: bool = False) -> Any:
    return make_config(
        pipeline={
            "enabled": True,
            "connection_arn": CONNECTION,
            "repository": "alice/pds-aws",
            "test_domain": "pds-test.example.com",
        },
        cost={"pipeline_runs_per_month": runs, "use_free_tier": free},
    )


def test_v2_pipeline_is_priced_per_action_minute_and_codebuild_per_step_minute() -> None:
    prices = load_prices("us-east-2")
    result = estimate(_template("V2"), _config(4), prices=prices)
    lines = {line.resource: line for line in result.lines}
    assert not result.unpriced
    # Action minutes a run: source 1 + Synth 15 + Upgrade 20 + Prepare 1 + Deploy 15 (the
    # Production stage's estimate) + the manual approval 0 = 52; 4 runs = 208 minutes.
    action = lines["Pipeline: CodePipeline V2 action minutes (52 a run, 4 runs)"]
    assert STEP_MINUTES["Synth"] == 15 and STEP_MINUTES["Upgrade"] == 20
    assert action.quantity == pytest.approx(208)
    assert action.monthly == pytest.approx(208 * 0.002)
    # CodeBuild: 15 min x 4 runs of general1.small at $0.005 a minute.
    synth = lines["Pipeline: CodeBuild step Synth"]
    assert synth.quantity == pytest.approx(60) and synth.monthly == pytest.approx(0.30)
    assert lines["Pipeline: CodeBuild step Upgrade"].monthly == pytest.approx(80 * 0.005)
    # The pipeline's projects are not priced a second time as image builds.
    assert not any("image builds" in line.resource for line in result.lines)


def test_free_allowances_cover_a_small_pipeline() -> None:
    """100 free V2 action minutes and 100 free general1.small build minutes a month."""
    result = estimate(_template("V2"), _config(1, free=True), prices=load_prices("us-east-2"))
    pipeline_lines = [line for line in result.lines if line.resource.startswith("Pipeline:")]
    assert len(pipeline_lines) == 3  # action minutes, Synth, Upgrade
    assert sum(line.monthly for line in pipeline_lines) == pytest.approx(0.0)
    assert all(line.free_quantity == line.quantity for line in pipeline_lines)


def test_v1_pipeline_is_a_flat_monthly_price() -> None:
    result = estimate(_template("V1"), _config(4), prices=load_prices("us-east-2"))
    (v1,) = [line for line in result.lines if "V1" in line.resource]
    assert (v1.quantity, v1.monthly, v1.kind.value) == (1, 1.00, "fixed")


def test_a_step_without_an_estimate_is_reported_unpriced() -> None:
    result = estimate(
        _template("V2", unknown_step=True), _config(4), prices=load_prices("us-east-2")
    )
    assert [u.why for u in result.unpriced] == [
        "no run-time estimate for action Lint of stage Build (pds_aws.cost.pipeline)"
    ]
