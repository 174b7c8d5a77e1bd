"""Custom resource: fill the missing keys of the PDS secret (a JSON object).

CloudFormation's GenerateSecretString makes one random value per secret; the PDS needs three,
and Secrets Manager bills per secret. So the stack creates one empty secret and this handler
writes `{"PDS_ADMIN_PASSWORD": ..., "PDS_JWT_SECRET": ..., "PDS_RATE_LIMIT_BYPASS_KEY": ...}`
into it, each value alphanumeric of the length the resource properties give (`Keys`).

Create/Update: read the secret; add only the keys it lacks, with values from Python's
`secrets` module; write it back only if something was added. A key already present, for
example one rotated by hand, is never overwritten. Delete: nothing (the secret's own removal
policy decides). No value is ever logged or returned in the response.

Self-contained (standard library + boto3) because Lambda runs this file alone.
"""

from __future__ import annotations

import json
import logging
import secrets
import string
from collections.abc import Mapping
from typing import Any

LOGGER = logging.getLogger(__name__)
LOGGER.setLevel(logging.INFO)

# Letters and digits, as GenerateSecretString with ExcludePunctuation made them: the admin
# password is typed into curl and HTTP basic auth.
ALPHABET = string.ascii_letters + string.digits
_CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits)


class SecretKeysError(Exception):
    """The secret holds something this handler must not overwrite."""


def random_value(length: int) -> str:
    """`length` random letters and digits with at least one of each class (as
    GetRandomPassword's RequireEachIncludedType)."""
    if length < len(_CLASSES):
        raise ValueError(f"a generated value needs at least {len(_CLASSES)} characters")
    while True:
        value = "".join(secrets.choice(ALPHABET) for _ in range(length))
        if all(any(c in cls for c in value) for cls in _CLASSES):
            return value


def key_lengths(properties: Mapping[str, Any]) -> dict[str, int]:
    """`Keys` of the resource properties: JSON key -> length (CloudFormation sends strings)."""
    return {str(key): int(length) for key, length in dict(properties["Keys"]).items()}


def with_missing_keys(current: Mapping[str, Any], lengths: Mapping[str, int]) -> dict[str, Any]:
    """`current` plus a random value for each key of `lengths` it lacks; nothing replaced."""
    filled = dict(current)
    for key, length in lengths.items():
        if key not in filled:
            filled[key] = random_value(length)
    return filled


def read_object(client: Any, secret_id: str) -> dict[str, Any]:
    """The secret's JSON object; `{}` for a secret without a value yet."""
    try:
        text = client.get_secret_value(SecretId=secret_id)["SecretString"]
    except client.exceptions.ResourceNotFoundException:
        # An empty secret has no AWSCURRENT version yet; a missing secret fails at the put.
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise SecretKeysError(
            f"{secret_id} does not hold a JSON object; put one back (its keys are the PDS's "
            f"variables) before deploying: this handler never overwrites a value"
        )
    return value


def fill(client: Any, event: Mapping[str, Any]) -> dict[str, Any]:
    """Handle one custom-resource event with a Secrets Manager client; returns the response."""
    props = event["ResourceProperties"]
    secret_id = str(props["SecretId"])
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": event.get("PhysicalResourceId", secret_id)}
    current = read_object(client, secret_id)
    filled = with_missing_keys(current, key_lengths(props))
    added = sorted(set(filled) - set(current))
    if added:
        client.put_secret_value(SecretId=secret_id, SecretString=json.dumps(filled))
    LOGGER.info(
        "%s: added %s to the PDS secret; kept %s",
        event["RequestType"],
        ", ".join(added) or "no key",
        ", ".join(sorted(current)) or "no key",
    )
    # No Data: nothing of the secret reaches CloudFormation.
    return {"PhysicalResourceId": secret_id}


def on_event(event: dict[str, Any], _context: Any = None) -> dict[str, Any]:
    """The CDK custom-resource provider's onEvent entry point."""
    import boto3  # only in Lambda and the local runtime: the pure functions need no AWS

    return fill(boto3.client("secretsmanager"), event)
