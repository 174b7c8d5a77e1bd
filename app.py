"""The CDK app for the CDK CLI: `npx cdk synth -c config=PATH` (default pds.example.toml)."""

from __future__ import annotations

import sys

from aws_cdk import App

from pds_aws.config import ConfigError, load_config
from pds_aws.infra.synth import CDK_CONTEXT, add_app_stacks
from pds_aws.names import EXAMPLE_CONFIG_FILE

app = App(context=dict(CDK_CONTEXT))
try:
    config = load_config(app.node.try_get_context("config") or EXAMPLE_CONFIG_FILE)
    add_app_stacks(app, config)
except ConfigError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)
app.synth()
