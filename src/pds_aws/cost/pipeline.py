"""The delivery pipeline's bill (`[pipeline]` on), per month and per run.

A run is the pipeline's actions: CodeBuild minutes per step (each CodeBuild project of the
pipeline is one step), CodePipeline action minutes (V2; a V1 pipeline is a flat monthly price),
and the test stage's stack, which exists only while a run uses it. Its price per hour comes from
this same model applied to the test stack's template. Runs a month are `[cost]
pipeline_runs_per_month`.

The minutes are estimates, not measurements (no AWS account runs the pipeline here): each is
written next to what the step does. A step without an estimate is reported unpriced.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pds_aws.cost.context import PricingContext
from pds_aws.cost.results import Charge, Kind, Unpriced

# CodeBuild minutes per run of each step, by pipeline action name (estimates).
STEP_MINUTES: dict[str, float] = {
    # `make install` (better-sqlite3 compiles: ~2 min), unit + template tests (~5-8 min on a
    # small machine, checkov's first run included), `cdk synth` of three stacks (~1 min).
    "Synth": 15.0,
    # CDK Pipelines: install the pinned CDK CLI, deploy the pipeline stack (usually no change).
    "SelfMutate": 3.0,
    # cdk-assets publishing the stacks' file assets (Lambda code, build contexts).
    "FileAssets": 3.0,
    # `make install-python` (~1 min) and `pds-aws smoke` (seconds).
    "SmokeTest": 2.0,
    "SmokeProduction": 2.0,
    # CloudFormation deleting the test stack (the ALB, certificate, buckets emptied).
    "DeleteTestStack": 10.0,
    # `pds-aws upgrade`: a restore drill task (~3 min), an ECS rollout (~5-10 min), smoke and
    # doctor; the drill alone when the tag is unchanged.
    "Upgrade": 20.0,
}
# CloudFormation actions: change-set creation, and the deploy of each stage's stack (a fresh
# test stack validates a certificate and builds both images; production updates in place).
PREPARE_MINUTES = 1.0
DEPLOY_MINUTES: dict[str, float] = {"Test": 25.0, "Production": 15.0}
SOURCE_MINUTES = 1.0
# How long the test stack exists in a run: its deploy, the smoke test and the teardown.
TEST_STACK_HOURS_PER_RUN = 1.0
LABEL = "Pipeline"


def _action_minutes(stage: str, action: Mapping[str, Any]) -> float | None:
    provider = action["ActionTypeId"]["Provider"]
    name = str(action["Name"])
    if provider == "Manual":
        return 0.0  # CodePipeline charges no manual approval
    if provider == "CloudFormation":
        return PREPARE_MINUTES if name.endswith(".Prepare") else DEPLOY_MINUTES.get(stage)
    if provider == "CodeBuild":
        return STEP_MINUTES.get(name)
    if action["ActionTypeId"]["Category"] == "Source":
        return SOURCE_MINUTES
    return None


def codebuild_project_of(action: Mapping[str, Any]) -> str | None:
    project = action.get("Configuration", {}).get("ProjectName")
    return str(project["Ref"]) if isinstance(project, dict) and "Ref" in project else None


def is_pipeline_project(res: Mapping[str, Any]) -> bool:
    """A CodeBuild project that runs as a pipeline action (priced here, per run)."""
    return bool(res.get("Properties", {}).get("Source", {}).get("Type") == "CODEPIPELINE")


def price_pipeline(ctx: PricingContext, logical_id: str, res: Mapping[str, Any]) -> None:
    runs = ctx.usage.pipeline_runs_per_month
    props = res.get("Properties", {})
    action_minutes = 0.0
    for stage in props.get("Stages", []):
        for action in stage.get("Actions", []):
            minutes = _action_minutes(stage["Name"], action)
            if minutes is None:
                ctx.unpriced.append(
                    Unpriced(
                        logical_id,
                        res["Type"],
                        f"no run-time estimate for action {action['Name']} of stage "
                        f"{stage['Name']} (pds_aws.cost.pipeline)",
                    )
                )
                continue
            action_minutes += minutes
            project = codebuild_project_of(action)
            if project is not None:
                _price_step(ctx, project, str(action["Name"]), minutes * runs)
    if props.get("PipelineType") == "V2":
        ctx.add(
            Charge(
                f"{LABEL}: CodePipeline V2 action minutes ({action_minutes:g} a run, "
                f"{runs:g} runs)",
                "codepipeline_v2_action_minute",
                action_minutes * runs,
                Kind.VARIABLE,
                (logical_id,),
                "codepipeline_v2_action_minutes",
            )
        )
    else:
        ctx.add(
            Charge(
                f"{LABEL}: CodePipeline V1 pipeline",
                "codepipeline_v1_pipeline_month",
                1,
                Kind.FIXED,
                (logical_id,),
                "codepipeline_v1_pipelines",
            )
        )


def _price_step(ctx: PricingContext, project: str, step: str, minutes: float) -> None:
    env = ctx.props(project).get("Environment", {})
    size = str(env.get("ComputeType", "")).removeprefix("BUILD_GENERAL1_").lower()
    arm = str(env.get("Type", "")).startswith("ARM")
    key = f"codebuild_arm1_{size}_minute" if arm else f"codebuild_general1_{size}_minute"
    if key not in ctx.prices.prices:
        ctx.unpriced.append(Unpriced(project, "AWS::CodeBuild::Project", f"compute type {env}"))
        return
    ctx.add(
        Charge(
            f"{LABEL}: CodeBuild step {step}",
            key,
            minutes,
            Kind.VARIABLE,
            (project,),
            "codebuild_small_minutes" if size == "small" and not arm else None,
        )
    )
