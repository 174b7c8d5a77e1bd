"""Rate limits on in the task, and their bypass key a secret operator tools can read.

@atproto/pds turns its limits on only with PDS_RATE_LIMITS_ENABLED (dist/config/config.js,
`rateLimitsCfg`), and skips them for a request whose `x-ratelimit-bypass` header equals
PDS_RATE_LIMIT_BYPASS_KEY (dist/rate-limits.js, `bypass`). The edge has no WAF: these limits
are the flood guard. The login-flood behaviour itself is shown on the real PDS in
tests/integration/test_local_edge_pds.py.
"""

from __future__ import annotations

from typing import Any

from pds_aws.names import PDS_CONTAINER as PDS_CONTAINER_NAME
from pds_aws.names import SECRET_KEYS_RESOURCE_TYPE
from pds_aws.ops.target import OUTPUT_BYPASS_SECRET


def pds_container(template: dict[str, Any]) -> dict[str, Any]:
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::ECS::TaskDefinition":
            for container in resource["Properties"]["ContainerDefinitions"]:
                if container["Name"] == PDS_CONTAINER_NAME:
                    return dict(container)
    raise AssertionError("no pds container")


def test_rate_limits_are_enabled(stack_template: dict[str, Any]) -> None:
    env = {e["Name"]: e["Value"] for e in pds_container(stack_template)["Environment"]}
    assert env["PDS_RATE_LIMITS_ENABLED"] == "true"
    # Bypass by address would also make the PDS trust X-Forwarded-For from it.
    assert "PDS_RATE_LIMIT_BYPASS_IPS" not in env


def test_bypass_key_is_a_generated_secret_injected_by_ecs_and_an_output(
    stack_template: dict[str, Any], prod_stack_template: dict[str, Any]
) -> None:
    secrets = {s["Name"]: s["ValueFrom"] for s in pds_container(stack_template)["Secrets"]}
    # One JSON key of the PDS secret (tests/template/test_pds_secret.py has the format).
    secret_ref, key_suffix = secrets["PDS_RATE_LIMIT_BYPASS_KEY"]["Fn::Join"][1]
    assert key_suffix == ":PDS_RATE_LIMIT_BYPASS_KEY::"
    logical_id = secret_ref["Ref"]
    secret = stack_template["Resources"][logical_id]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    # Generated at deploy time by the keys custom resource, 48 letters and digits.
    (keys,) = (
        r for r in stack_template["Resources"].values() if r["Type"] == SECRET_KEYS_RESOURCE_TYPE
    )
    assert keys["Properties"]["SecretId"] == {"Ref": logical_id}
    assert int(keys["Properties"]["Keys"]["PDS_RATE_LIMIT_BYPASS_KEY"]) >= 32
    assert "SecretString" not in secret["Properties"]
    assert stack_template["Outputs"][OUTPUT_BYPASS_SECRET]["Value"] == {"Ref": logical_id}
    assert secret["DeletionPolicy"] == "Delete"
    prod_secret = next(
        r
        for r in prod_stack_template["Resources"].values()
        if r["Type"] == "AWS::SecretsManager::Secret"
        and "PDS_RATE_LIMIT_BYPASS_KEY" in r["Properties"].get("Description", "")
    )
    assert prod_secret["DeletionPolicy"] == "Retain"
