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
