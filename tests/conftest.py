"""Shared fixtures of the stack tests: each template is synthesized once per session."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from pds_aws.config import Config, parse_config
from pds_aws.infra.synth import synthesize

PROJECT_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = PROJECT_ROOT / "pds.example.toml"

ConfigFactory = Callable[..., Config]


def example_data() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE_CONFIG.read_text(encoding="utf-8"))


def make_config(**sections: dict[str, Any]) -> Config:
    """The example config with some keys replaced: make_config(aws={"mode": "prod"})."""
    data = example_data()
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return parse_config(data, EXAMPLE_CONFIG)


@pytest.fixture(scope="session")
def config_factory() -> ConfigFactory:
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
        task={"architecture": "x86_64", "spot": True, "cpu": 2048, "memory": 4096},
        pds={"invite_required": False, "contact_email": "admin@example.com"},
        monitoring={"log_retention_days": 365, "alarm_emails": ["a@example.com", "b@example.com"]},
    )


@pytest.fixture(scope="session")
def prod_stack_template(prod_config: Config) -> dict[str, Any]:
    """A prod-mode variant: x86_64, Spot, larger task, other alarm addresses."""
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
