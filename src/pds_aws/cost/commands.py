"""`pds-aws cost`: the monthly bill of what the config would deploy.

The figures come from `pds_aws.cost.model` (a model over the synthesized template); this
module only parses arguments and prints.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from pds_aws.names import CONFIG_ENV, EXAMPLE_CONFIG_FILE
from pds_aws.ops.common import add_command


def add_commands(subparsers: Any) -> None:
    parser = add_command(subparsers, "cost", run_cost)
    parser.add_argument(
        "-c",
        "--config",
        default=os.environ.get(CONFIG_ENV, EXAMPLE_CONFIG_FILE),
        help="config file (default: $PDS_AWS_CONFIG or %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print the estimate as JSON")


def run_cost(args: argparse.Namespace) -> int:
    """estimate the monthly AWS bill of the stack this config would deploy

    Synthesize the stack from the config, price every resource in the template (prices:
    src/pds_aws/cost/prices.toml), and print the monthly estimate. Usage assumptions are the
    config's [cost] section. Exits 1 when a resource is unpriced (the table lists it)."""
    # Imported here so `pds-aws --help` stays fast (the model synthesizes a CDK app).
    from pds_aws.config import load_config
    from pds_aws.cost.model import estimate_config
    from pds_aws.cost.table import render_table

    config = load_config(args.config)
    estimate = estimate_config(config)
    if args.json:
        print(json.dumps(estimate.to_json(), indent=2, sort_keys=True))
    else:
        print(render_table(estimate))
    return 1 if estimate.unpriced else 0
