"""Create, in the local AWS, the buckets, KMS keys and secrets the template declares.

Idempotent: the emulator keeps its state across restarts (aws_emulator.py), so a second start
finds everything and creates nothing; secrets keep their generated values and the rotation
key keeps its key material, as retained resources do on AWS.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from pds_aws.local.taskdef import (
    LOCAL_AWS_CREDENTIALS,
    AwsResources,
    LocalAws,
    local_bucket_name,
    local_key_alias,
    local_secret_name,
)


@dataclass(frozen=True)
class LocalAwsState:
    aws: LocalAws
    secret_strings: Mapping[str, str]  # secret ARN -> SecretString


def client(service: str, endpoint: str, region: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=LOCAL_AWS_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=BotoConfig(retries={"max_attempts": 3}, connect_timeout=5, read_timeout=30),
    )


def _ensure_bucket(s3: Any, name: str, region: str, versioned: bool) -> None:
    try:
        s3.head_bucket(Bucket=name)
    except ClientError:
        args: dict[str, Any] = {"Bucket": name}
        if region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**args)
        if versioned:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def _ensure_key(kms: Any, logical_id: str, key_spec: str, key_usage: str, description: str) -> str:
    alias = local_key_alias(logical_id)
    for page in kms.get_paginator("list_aliases").paginate():
        for entry in page["Aliases"]:
            if entry["AliasName"] == alias and entry.get("TargetKeyId"):
                return str(entry["TargetKeyId"])
    key_id = str(
        kms.create_key(KeySpec=key_spec, KeyUsage=key_usage, Description=description)[
            "KeyMetadata"
        ]["KeyId"]
    )
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    return key_id


def _ensure_secret(
    secrets: Any,
    logical_id: str,
    description: str,
    generate: Mapping[str, Any] | None,
    template: str | None,
    generate_key: str | None,
) -> tuple[str, str]:
    name = local_secret_name(logical_id)
    try:
        value = secrets.get_secret_value(SecretId=name)
        return str(value["ARN"]), str(value["SecretString"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    # Secrets Manager generates the value, as GenerateSecretString does on AWS.
    generated = str(secrets.get_random_password(**(generate or {}))["RandomPassword"])
    if template and generate_key:
        data = json.loads(template)
        data[generate_key] = generated
        generated = json.dumps(data)
    created = secrets.create_secret(Name=name, Description=description, SecretString=generated)
    return str(created["ARN"]), generated


def provision(
    resources: AwsResources, *, endpoint: str, region: str, stack_name: str
) -> LocalAwsState:
    """Make the local AWS hold what the template declares; return the local names."""
    s3 = client("s3", endpoint, region)
    kms = client("kms", endpoint, region)
    secrets = client("secretsmanager", endpoint, region)
    bucket_names = {}
    for bucket in resources.buckets:
        name = local_bucket_name(stack_name, bucket.logical_id)
        _ensure_bucket(s3, name, region, bucket.versioned)
        bucket_names[bucket.logical_id] = name
    key_ids = {
        key.logical_id: _ensure_key(
            kms, key.logical_id, key.key_spec, key.key_usage, key.description
        )
        for key in resources.keys
    }
    secret_arns: dict[str, str] = {}
    secret_strings: dict[str, str] = {}
    for secret in resources.secrets:
        arn, value = _ensure_secret(
            secrets,
            secret.logical_id,
            secret.description,
            secret.generate,
            secret.template,
            secret.generate_key,
        )
        secret_arns[secret.logical_id] = arn
        secret_strings[arn] = value
    return LocalAwsState(LocalAws(region, bucket_names, key_ids, secret_arns), secret_strings)


def rotation_public_key(endpoint: str, region: str, key_id: str) -> bytes:
    """The DER public key of a KMS key (tests compare it across restarts)."""
    kms = client("kms", endpoint, region)
    return bytes(kms.get_public_key(KeyId=key_id)["PublicKey"])
