"""The test stage's config: the production config under the `[pipeline] test_*` names.

The test stage is a separate, test-mode stack (everything is deleted with it) with its own
domain, SES identity (a domain identity for `test_domain`) and stack name, so it never touches
production's resources. It adopts nothing (`[recover]` is production's) and runs no relay
watchdog (relays never learn of a throwaway PDS).
"""

from __future__ import annotations

from typing import Any

from pds_aws.config import Config, Mode, parse_config

TEST_STACK_SUFFIX = "-Test"


def stack_name_of_test_stage(config: Config) -> str:
    return config.pipeline.test_stack_name or f"{config.aws.stack_name}{TEST_STACK_SUFFIX}"


def config_of_test_stage(config: Config) -> Config:
    """`config` as the test stage deploys it (validated again, as any config is)."""
    pipeline = config.pipeline
    data: dict[str, Any] = config.model_dump(mode="json", exclude={"source"})
    data["pds"].update(
        domain=pipeline.test_domain,
        hosted_zone_id=pipeline.test_hosted_zone_id or config.pds.hosted_zone_id,
        hosted_zone_name=pipeline.test_hosted_zone_name or config.pds.hosted_zone_name,
        # The SES identity is the test domain's: sender and handles follow it.
        email_from="",
        handle_domains=[],
    )
    data["aws"].update(mode=Mode.TEST.value, stack_name=stack_name_of_test_stage(config))
    data["monitoring"].update(relay_check=0)
    data.pop("recover")
    data.pop("pipeline")
    return parse_config(data, config.source)


# The production steps' role has a fixed name (path '/': CodeBuild takes a role by name), so
# the production stack can admit it to its backup bucket by ARN without a reference to the
# pipeline stack. IAM allows 64 characters.
_ROLE_SUFFIX = "-pipeline-operator"


def production_steps_role_name(config: Config) -> str:
    return config.aws.stack_name[: 64 - len(_ROLE_SUFFIX)] + _ROLE_SUFFIX


def production_steps_role_arn(config: Config) -> str:
    """The ARN of the role the pipeline's upgrade and smoke steps run as ('' without one)."""
    if not config.pipeline.enabled:
        return ""
    return f"arn:aws:iam::{config.aws.account}:role/{production_steps_role_name(config)}"
