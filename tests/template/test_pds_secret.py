"""The one PDS secret: three generated keys in one Secrets Manager secret, injected by key.

Secrets Manager bills per secret, so the admin password, the JWT secret and the rate-limit
bypass key are JSON keys of one secret, filled at deploy time by a custom resource (its
handler is tested in tests/unit/test_pds_secret_keys.py).
"""

from __future__ import annotations

import re
from typing import Any

from pds_aws.infra.pds_secret import GENERATED_KEYS, HANDLER_ACTIONS
from pds_aws.local.taskdef import parse_secret_value_from
from pds_aws.names import PDS_CONTAINER, SECRET_KEYS_RESOURCE_TYPE
from pds_aws.ops.target import OUTPUT_ADMIN_SECRET, OUTPUT_BYPASS_SECRET

SECRET = "AWS::SecretsManager::Secret"


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def pds_secret_id(template: dict[str, Any]) -> str:
    (keys,) = of_type(template, SECRET_KEYS_RESOURCE_TYPE).values()
    return str(keys["Properties"]["SecretId"]["Ref"])


def pds_container_secrets(template: dict[str, Any]) -> dict[str, Any]:
    (service,) = of_type(template, "AWS::ECS::Service").values()
    task = template["Resources"][service["Properties"]["TaskDefinition"]["Ref"]]
    (pds,) = (c for c in task["Properties"]["ContainerDefinitions"] if c["Name"] == PDS_CONTAINER)
    return {s["Name"]: s["ValueFrom"] for s in pds["Secrets"]}


def attributes_read(node: Any) -> set[str]:
    """Logical ids whose attributes the template reads (Fn::GetAtt, ${Id.Attr})."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub" and isinstance(value, (str, list)):
                text = value if isinstance(value, str) else value[0]
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}]+)\}", text) if "." in m}
            found |= attributes_read(value)
    elif isinstance(node, list):
        for item in node:
            found |= attributes_read(item)
    return found


def test_two_secrets_the_pds_one_created_empty(
    stack_template: dict[str, Any], prod_stack_template: dict[str, Any]
) -> None:
    """AWS::SecretsManager::Secret, GenerateSecretString: "If you omit both
    GenerateSecretString and SecretString, you create an empty secret" (CloudFormation User
    Guide, aws-resource-secretsmanager-secret.html). So no value is in the template and
    CloudFormation never writes one over the keys the custom resource added."""
    secrets = of_type(stack_template, SECRET)
    assert len(secrets) == 2  # the PDS secret and the e-mail component's SMTP URL
    pds = secrets[pds_secret_id(stack_template)]
    assert "GenerateSecretString" not in pds["Properties"]
    assert "SecretString" not in pds["Properties"]
    assert pds["DeletionPolicy"] == "Delete"
    prod = prod_stack_template["Resources"][pds_secret_id(prod_stack_template)]
    assert prod["DeletionPolicy"] == "Retain"


def test_each_key_reaches_the_pds_through_value_from_with_its_json_key(
    stack_template: dict[str, Any],
) -> None:
    """ECS injects one JSON key of a secret when `valueFrom` is
    `arn:aws:secretsmanager:region:aws_account_id:secret:secret-name:json-key:version-stage:version-id`
    (Amazon ECS Developer Guide, "Retrieve Secrets Manager secrets through environment
    variables", secrets-envvar-secrets-manager.html); empty stage and id mean AWSCURRENT. A
    JSON key needs Fargate platform version 1.4.0 or later: the service runs LATEST."""
    secret_id = pds_secret_id(stack_template)
    value_from = pds_container_secrets(stack_template)
    for key in GENERATED_KEYS:
        assert value_from[key] == {"Fn::Join": ["", [{"Ref": secret_id}, f":{key}::"]]}
        # The local runtime reads the same string back as (secret ARN, JSON key).
        arn = "arn:aws:secretsmanager:us-east-2:123456789012:secret:pds-AbCdEf"
        ref = parse_secret_value_from(arn + value_from[key]["Fn::Join"][1][1])
        assert (ref.secret_id, ref.json_key) == (arn, key)
    assert set(GENERATED_KEYS) == {
        "PDS_ADMIN_PASSWORD",
        "PDS_JWT_SECRET",
        "PDS_RATE_LIMIT_BYPASS_KEY",
    }
    (service,) = of_type(stack_template, "AWS::ECS::Service").values()
    assert service["Properties"]["PlatformVersion"] == "LATEST"


def test_the_custom_resource_carries_lengths_never_a_value(stack_template: dict[str, Any]) -> None:
    (logical_id, keys), *_ = of_type(stack_template, SECRET_KEYS_RESOURCE_TYPE).items()
    props = keys["Properties"]
    assert set(props) == {"ServiceToken", "SecretId", "Keys"}
    # Today's lengths (32, 64, 48 letters and digits); CloudFormation passes them as strings.
    assert props["Keys"] == {
        "PDS_ADMIN_PASSWORD": "32",
        "PDS_JWT_SECRET": "64",
        "PDS_RATE_LIMIT_BYPASS_KEY": "48",
    }
    # Nothing reads an attribute of it: the handler returns no Data to read.
    assert logical_id not in attributes_read(stack_template)


def test_the_service_starts_only_after_the_keys_exist(stack_template: dict[str, Any]) -> None:
    (logical_id,) = of_type(stack_template, SECRET_KEYS_RESOURCE_TYPE)
    (service,) = of_type(stack_template, "AWS::ECS::Service").values()
    assert logical_id in service["DependsOn"]


def test_the_handler_may_read_and_write_that_secret_only(stack_template: dict[str, Any]) -> None:
    (keys,) = of_type(stack_template, SECRET_KEYS_RESOURCE_TYPE).values()
    provider = keys["Properties"]["ServiceToken"]["Fn::GetAtt"][0]
    resources = stack_template["Resources"]
    # The provider framework's function names the handler in its environment.
    handler_ref = resources[provider]["Properties"]["Environment"]["Variables"][
        "USER_ON_EVENT_FUNCTION_ARN"
    ]["Fn::GetAtt"][0]
    role = resources[handler_ref]["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [
        statement
        for policy in of_type(stack_template, "AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"].get("Roles", [])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert statements == [
        {
            "Action": list(HANDLER_ACTIONS),
            "Effect": "Allow",
            "Resource": {"Ref": pds_secret_id(stack_template)},
        }
    ]
    assert HANDLER_ACTIONS == ("secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue")
    assert not resources[role]["Properties"].get("Policies")


def test_operator_outputs_name_the_pds_secret(stack_template: dict[str, Any]) -> None:
    outputs = stack_template["Outputs"]
    secret = {"Ref": pds_secret_id(stack_template)}
    assert outputs[OUTPUT_ADMIN_SECRET]["Value"] == secret
    assert outputs[OUTPUT_BYPASS_SECRET]["Value"] == secret
