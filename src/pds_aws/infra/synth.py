"""Synthesis in-process: the CloudFormation template of a config, no AWS and no Docker needed.

`build_app` is what `app.py` (the CDK CLI) and the tests share, so they produce the same
template. `python -m pds_aws.infra.synth --summary` prints what the template contains.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Stack
from constructs import Construct

from pds_aws.config import Config, ConfigError, load_config
from pds_aws.direct.health_stack import HEALTH_REGION, HealthCheckStack, health_stack_name
from pds_aws.infra.stack import PdsStack
from pds_aws.names import EXAMPLE_CONFIG_FILE

# Feature flags the app runs with; cdk.json carries none so tests and the CLI agree.
CDK_CONTEXT: dict[str, Any] = {
    "@aws-cdk/aws-iam:minimizePolicies": True,
    "@aws-cdk/aws-ec2:restrictDefaultSecurityGroup": True,
    "@aws-cdk/aws-s3:createDefaultLoggingPolicy": True,
    "@aws-cdk/aws-ecs:arnFormatIncludesClusterName": True,
    "@aws-cdk/aws-secretsmanager:useAttachedSecretResourcePolicyForSecretTargetAttachments": True,
    "@aws-cdk/core:enablePartitionLiterals": True,
}


def add_stack(app: Construct, config: Config) -> PdsStack:
    """The PDS stack in `app` (an App, or a pipeline's Stage), in the config's account and region.

    With `[edge] kind = "direct"` the app also holds the health-check stack in us-east-1
    (`stack.health_stack`), where Route 53 publishes health-check metrics.
    """
    stack = PdsStack(
        app,
        config.aws.stack_name,
        # Explicit: inside a pipeline's Stage the default would prefix the stage's name.
        stack_name=config.aws.stack_name,
        config=config,
        env=Environment(account=config.aws.account, region=config.aws.region),
        description=f"Bluesky PDS at {config.pds.domain} (pds-aws, {config.aws.mode.value} mode)",
    )
    stack.health_stack = None
    if config.is_direct:
        stack.health_stack = HealthCheckStack(
            app,
            health_stack_name(config),
            stack_name=health_stack_name(config),
            config=config,
            env=Environment(account=config.aws.account, region=HEALTH_REGION),
            description=f"External health check of the Bluesky PDS at {config.pds.domain} "
            f"and its alarm (pds-aws; Route 53 health-check metrics exist only in {HEALTH_REGION})",
        )
    return stack


def add_app_stacks(app: App, config: Config) -> Stack:
    """What `make synth` and `make deploy` act on: the PDS stack, or with `[pipeline]` on, the
    pipeline stack (which deploys the PDS stack in its test and production stages)."""
    if config.pipeline.enabled:
        from pds_aws.pipeline.stack import add_pipeline

        return add_pipeline(app, config)
    return add_stack(app, config)


def build_app(config: Config, *, outdir: str | None = None) -> tuple[App, Stack]:
    """A fresh CDK app holding the PDS stack for `config`."""
    app = App(context=dict(CDK_CONTEXT), outdir=outdir)
    return app, add_stack(app, config)


def synthesize(config: Config) -> dict[str, Any]:
    """The stack's CloudFormation template as a dict."""
    with tempfile.TemporaryDirectory(prefix="pds-aws-synth-") as outdir:
        app, stack = build_app(config, outdir=outdir)
        template: dict[str, Any] = app.synth().get_stack_by_name(stack.stack_name).template
    return template


def synthesize_all(config: Config) -> dict[str, dict[str, Any]]:
    """Every stack's template, by stack name (the PDS stack, and the health stack if direct)."""
    with tempfile.TemporaryDirectory(prefix="pds-aws-synth-") as outdir:
        app, stack = build_app(config, outdir=outdir)
        assert isinstance(stack, PdsStack)
        assembly = app.synth()
        names = [stack.stack_name]
        if stack.health_stack is not None:
            names.append(stack.health_stack.stack_name)
        return {name: assembly.get_stack_by_name(name).template for name in names}


def summarize(template: dict[str, Any]) -> str:
    """Resource counts by type, most frequent first."""
    counts = Counter(r["Type"] for r in template.get("Resources", {}).values())
    lines = [f"{sum(counts.values())} resources, {len(template.get('Outputs', {}))} outputs"]
    lines += [
        f"  {n:4d}  {kind}" for kind, n in sorted(counts.items(), key=lambda x: (-x[1], x[0]))
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pds_aws.infra.synth", description="Synthesize the PDS stack from a config."
    )
    parser.add_argument("--config", default=EXAMPLE_CONFIG_FILE, help="the TOML config file")
    parser.add_argument("--outdir", default="cdk.out", help="where to write the templates")
    parser.add_argument("--summary", action="store_true", help="print what the template holds")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        app, stack = build_app(config, outdir=args.outdir)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    assembly = app.synth()
    artifact = assembly.get_stack_by_name(stack.stack_name)
    template_path = Path(args.outdir) / artifact.template_file
    if args.summary:
        print(f"config:   {config.source}")
        print(
            f"stack:    {stack.stack_name} ({config.aws.account}/{config.aws.region}, "
            f"{config.aws.mode.value} mode)"
        )
        print(f"template: {template_path}")
        print(summarize(json.loads(template_path.read_text(encoding="utf-8"))))
    else:
        print(template_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
