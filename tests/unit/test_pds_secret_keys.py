"""The PDS secret's custom-resource handler against Secrets Manager (moto in-process).

The handler (infra/pds_secret_keys/handler.py) is ours; moto stands in for Secrets Manager.
It must add only the missing keys, never overwrite one (a hand rotation survives deploys),
never put a value in its response or its log, and leave the secret alone on Delete.
"""

from __future__ import annotations

import json
import logging
import string
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pds_aws.infra.pds_secret_keys import handler
from pds_aws.names import ADMIN_PASSWORD_KEY, JWT_SECRET_KEY, RATE_LIMIT_BYPASS_KEY
from pds_aws.ops import target

# As the template passes them (tests/template/test_pds_secret.py checks the template).
KEYS = {ADMIN_PASSWORD_KEY: "32", JWT_SECRET_KEY: "64", RATE_LIMIT_BYPASS_KEY: "48"}
REGION = "us-east-2"


@pytest.fixture
def secrets() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)


@pytest.fixture
def empty_secret(secrets: Any) -> str:
    """As CloudFormation creates it: neither GenerateSecretString nor SecretString."""
    return str(secrets.create_secret(Name="pds", Description="the PDS secret")["ARN"])


def event(request: str, secret_arn: str, **extra: Any) -> dict[str, Any]:
    return {
        "RequestType": request,
        "ResourceProperties": {"ServiceToken": "arn:x", "SecretId": secret_arn, "Keys": KEYS},
        **extra,
    }


def stored(secrets: Any, arn: str) -> dict[str, str]:
    return dict(json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"]))


def versions(secrets: Any, arn: str) -> int:
    return len(secrets.list_secret_version_ids(SecretId=arn)["Versions"])


def test_create_fills_every_key_with_letters_and_digits_of_its_length(
    secrets: Any, empty_secret: str
) -> None:
    handler.fill(secrets, event("Create", empty_secret))
    value = stored(secrets, empty_secret)
    assert {key: len(v) for key, v in value.items()} == {k: int(n) for k, n in KEYS.items()}
    alphabet = set(string.ascii_letters + string.digits)
    for generated in value.values():
        assert set(generated) <= alphabet
        assert any(c.islower() for c in generated) and any(c.isupper() for c in generated)
        assert any(c.isdigit() for c in generated)
    assert len(set(value.values())) == 3


def test_a_key_already_there_is_never_overwritten(secrets: Any, empty_secret: str) -> None:
    # A hand rotation of the JWT secret, then a deploy that runs Update.
    secrets.put_secret_value(
        SecretId=empty_secret, SecretString=json.dumps({JWT_SECRET_KEY: "rotated-by-hand"})
    )
    handler.fill(secrets, event("Update", empty_secret, PhysicalResourceId=empty_secret))
    value = stored(secrets, empty_secret)
    assert value[JWT_SECRET_KEY] == "rotated-by-hand"
    assert set(value) == set(KEYS)
    # Everything there: the next deploy writes nothing (no new version of the secret).
    before, count = value, versions(secrets, empty_secret)
    handler.fill(secrets, event("Update", empty_secret, PhysicalResourceId=empty_secret))
    assert stored(secrets, empty_secret) == before
    assert versions(secrets, empty_secret) == count


def test_no_value_in_the_response_or_the_log(
    secrets: Any, empty_secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=handler.LOGGER.name):
        response = handler.fill(secrets, event("Create", empty_secret))
    assert response == {"PhysicalResourceId": empty_secret}
    values = stored(secrets, empty_secret).values()
    text = json.dumps(response) + caplog.text
    assert not [v for v in values if v in text]
    # The log says what was done, by key name.
    assert "added PDS_ADMIN_PASSWORD, PDS_JWT_SECRET, PDS_RATE_LIMIT_BYPASS_KEY" in caplog.text


def test_delete_leaves_the_secret_to_its_removal_policy(secrets: Any, empty_secret: str) -> None:
    handler.fill(secrets, event("Create", empty_secret))
    before = stored(secrets, empty_secret)
    response = handler.fill(secrets, event("Delete", empty_secret, PhysicalResourceId="pid"))
    assert response == {"PhysicalResourceId": "pid"}
    assert stored(secrets, empty_secret) == before


def test_a_secret_that_is_not_a_json_object_is_refused_not_overwritten(
    secrets: Any, empty_secret: str
) -> None:
    secrets.put_secret_value(SecretId=empty_secret, SecretString="a-plain-password")
    with pytest.raises(handler.SecretKeysError, match="JSON object"):
        handler.fill(secrets, event("Update", empty_secret))
    assert secrets.get_secret_value(SecretId=empty_secret)["SecretString"] == "a-plain-password"


def test_a_missing_secret_fails_the_deploy(secrets: Any) -> None:
    missing = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:gone-AbCdEf"
    with pytest.raises(secrets.exceptions.ResourceNotFoundException):
        handler.fill(secrets, event("Create", missing))


def test_random_values_differ_and_keep_their_length() -> None:
    values = {handler.random_value(32) for _ in range(20)}
    assert len(values) == 20
    assert {len(v) for v in values} == {32}
    with pytest.raises(ValueError, match="at least 3"):
        handler.random_value(2)


# --- the operator side reads the same keys -----------------------------------------------


@pytest.mark.parametrize(
    ("secret", "password"),
    [
        (json.dumps({ADMIN_PASSWORD_KEY: "from-key", RATE_LIMIT_BYPASS_KEY: "k"}), "from-key"),
        ("plain-pw", "plain-pw"),  # a stack deployed before the secret was one object
    ],
)
def test_operator_commands_read_the_admin_password_by_its_key(secret: str, password: str) -> None:
    assert target.admin_password_from_secret(secret) == password


def test_a_missing_key_is_named_with_the_fix() -> None:
    with pytest.raises(
        target.TargetError, match=r"no key PDS_RATE_LIMIT_BYPASS_KEY.*Rotating the PDS secrets"
    ):
        target.value_from_secret(json.dumps({ADMIN_PASSWORD_KEY: "x"}), RATE_LIMIT_BYPASS_KEY)


class _Stack:
    def __init__(self, outputs: dict[str, str]) -> None:
        self.outputs = outputs

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        outputs = [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs.items()]
        return {"Stacks": [{"StackName": StackName, "Outputs": outputs}]}


class _Session:
    """CloudFormation answered from a dict (moto cannot deploy the stack); Secrets Manager
    is moto."""

    region_name = REGION

    def __init__(self, outputs: dict[str, str], secrets: Any) -> None:
        self._clients = {"cloudformation": _Stack(outputs), "secretsmanager": secrets}

    def client(self, service: str) -> Any:
        return self._clients[service]


def test_a_deployed_stack_target_reads_both_keys_from_the_one_secret(
    secrets: Any, empty_secret: str
) -> None:
    handler.fill(secrets, event("Create", empty_secret))
    value = stored(secrets, empty_secret)
    outputs = {
        target.OUTPUT_URL: "https://pds.example.com",
        target.OUTPUT_ADMIN_SECRET: empty_secret,
        target.OUTPUT_BYPASS_SECRET: empty_secret,
    }
    resolved = target.resolve_stack(_Session(outputs, secrets), "BlueskyPds")  # type: ignore[arg-type]
    assert resolved.admin_password == value[ADMIN_PASSWORD_KEY]
    assert resolved.rate_limit_bypass_key == value[RATE_LIMIT_BYPASS_KEY]
