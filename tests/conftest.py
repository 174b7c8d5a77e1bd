"""Shared fixtures: the example and prod configs, each template synthesized once per session.

Shared helper functions live in helpers.py (this folder is on `sys.path` once pytest loads
this file).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk.assertions import Template

from helpers import make_config
from pds_aws.config import Config
from pds_aws.infra.synth import synthesize


@pytest.fixture(scope="session")
def config_factory() -> Callable[..., Config]:
    """helpers.make_config as a fixture (tests may take either; there is one factory)."""
    return make_config


@pytest.fixture(scope="session")
def example_config() -> Config:
    return make_config()


@pytest.fixture(scope="session")
def stack_template(example_config: Config) -> dict[str, Any]:
    """The template of pds.example.toml (test mode, ARM64, on-demand)."""
    return synthesize(example_config)


@pytest.fixture(scope="session")
def template(stack_template: dict[str, Any]) -> Template:
    return Template.from_json(stack_template)


@pytest.fixture(scope="session")
def prod_config() -> Config:
    return make_config(
        aws={"mode": "prod"},
        task={
            "architecture": "x86_64",
            "spot": True,
            "cpu": 2048,
            "memory": 4096,
            "ephemeral_storage_gib": 30,
        },
        pds={"invite_required": False, "contact_email": "admin@example.com"},
        monitoring={"log_retention_days": 365, "alarm_emails": ["a@example.com", "b@example.com"]},
    )


@pytest.fixture(scope="session")
def prod_stack_template(prod_config: Config) -> dict[str, Any]:
    """A prod-mode variant: x86_64, Spot, larger task and disk, other alarm addresses."""
    return synthesize(prod_config)


@pytest.fixture(scope="session")
def prod_template(prod_stack_template: dict[str, Any]) -> Template:
    return Template.from_json(prod_stack_template)


@pytest.fixture(scope="session")
def direct_config() -> Config:
    """pds.example.toml with `[edge] kind = "direct"` and the shape's defaults."""
    return make_config(edge={"kind": "direct"})


@pytest.fixture(scope="session")
def direct_templates(direct_config: Config) -> dict[str, dict[str, Any]]:
    """The direct shape's templates by stack name: the PDS stack and its us-east-1 stack."""
    from pds_aws.infra.synth import synthesize_all

    return synthesize_all(direct_config)


@pytest.fixture(scope="session")
def direct_stack_template(
    direct_config: Config, direct_templates: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    return direct_templates[direct_config.aws.stack_name]


@pytest.fixture(scope="session")
def direct_health_template(
    direct_config: Config, direct_templates: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    from pds_aws.direct.health_stack import health_stack_name

    return direct_templates[health_stack_name(direct_config)]
