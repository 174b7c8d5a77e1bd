"""`pds-aws cost` with `[pipeline]` on: production and the pipeline a month, and one run.

The production stack (and the direct edge's us-east-1 stack) and the pipeline stack are priced
together as usual. The test stage's stack exists only while a run uses it (its teardown deletes
it): its fixed charges are priced by the same model and counted for
`cost.pipeline.TEST_STACK_HOURS_PER_RUN` hours a run, and its image builds once a run.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping
from typing import Any

from pds_aws.config import Config
from pds_aws.cost.measured import MeasuredRate
from pds_aws.cost.model import estimate, merge_templates
from pds_aws.cost.pipeline import LABEL, TEST_STACK_HOURS_PER_RUN
from pds_aws.cost.results import Estimate, Kind, LineItem

# Charges the test stage shares with production instead of adding (the hosted zone exists
# once, whichever stacks use it).
SHARED_WITH_PRODUCTION = frozenset({"route53_hosted_zone_month"})


def _test_stage_config(config: Config) -> Config:
    from pds_aws.pipeline.stage_configs import config_of_test_stage

    test = config_of_test_stage(config)
    # Its image builds happen once a run; the account's free allowances go to production.
    cost = test.cost.model_copy(
        update={"deploys_per_month": config.cost.pipeline_runs_per_month, "use_free_tier": False}
    )
    return test.model_copy(update={"cost": cost})


def _test_stage_lines(test: Estimate, runs: float) -> tuple[list[LineItem], list[str]]:
    share = runs * TEST_STACK_HOURS_PER_RUN / test.hours_per_month
    lines, left_out = [], []
    for line in test.lines:
        if line.price_key in SHARED_WITH_PRODUCTION:
            continue
        if line.kind is Kind.FIXED:
            lines.append(
                dataclasses.replace(
                    line,
                    resource=f"{LABEL}: test stage {line.resource} "
                    f"({TEST_STACK_HOURS_PER_RUN:g} h a run)",
                    quantity=line.quantity * share,
                    free_quantity=0.0,
                    monthly=line.monthly * share,
                    kind=Kind.VARIABLE,
                )
            )
        elif line.price_key.startswith("codebuild_"):
            lines.append(dataclasses.replace(line, resource=f"{LABEL}: test stage {line.resource}"))
        else:
            left_out.append(line.resource)
    return lines, left_out


def estimate_pipeline_templates(
    config: Config, templates: Mapping[str, Mapping[str, Any]], backup_idle: MeasuredRate
) -> Estimate:
    """Price `templates` (by stack name, as pipeline.stack.synthesize_pipeline returns them)."""
    from pds_aws.direct.health_stack import health_stack_name

    test_config = _test_stage_config(config)
    test_names = {test_config.aws.stack_name, health_stack_name(test_config)}
    production = merge_templates(t for n, t in templates.items() if n not in test_names)
    base = estimate(production, config, backup_idle=backup_idle)
    test = estimate(
        merge_templates(t for n, t in templates.items() if n in test_names),
        test_config,
        backup_idle=backup_idle,
    )
    runs = config.cost.pipeline_runs_per_month
    test_lines, left_out = _test_stage_lines(test, runs)
    lines = (*base.lines, *test_lines)
    pipeline_lines = [line for line in lines if line.resource.startswith(f"{LABEL}:")]
    notes = list(base.notes)
    per_run = (
        sum(line.quantity * line.unit_price for line in pipeline_lines) / runs if runs else None
    )
    notes.append(
        f"A pipeline run: CodeBuild minutes per step, CodePipeline action minutes, the test "
        f"stage for {TEST_STACK_HOURS_PER_RUN:g} h; {runs:g} runs a month ([cost] "
        "pipeline_runs_per_month). Each run also deploys production: count those deploys in "
        "[cost] deploys_per_month."
    )
    if left_out:
        notes.append(
            "The test stage's usage charges (" + ", ".join(left_out) + ") are left out: "
            "the smoke test makes a few requests."
        )
    return dataclasses.replace(
        base,
        lines=tuple(sorted(lines, key=lambda line: line.kind is Kind.VARIABLE)),
        unpriced=(*base.unpriced, *test.unpriced),
        notes=tuple(notes),
        pipeline_run_usd=per_run,
    )


def estimate_with_pipeline(config: Config, backup_idle: MeasuredRate) -> Estimate:
    from pds_aws.pipeline.stack import synthesize_pipeline

    with tempfile.TemporaryDirectory(prefix="pds-aws-cost-") as outdir:
        templates = synthesize_pipeline(config, outdir=outdir)
    return estimate_pipeline_templates(config, templates, backup_idle)
