"""Create, in the local AWS, the buckets, KMS keys and secrets the template declares.

Idempotent: the emulator keeps its state across restarts (aws_emulator.py), so a second start
finds everything and creates nothing; secrets keep their generated values and the rotation
key keeps its key material, as retained resources do on AWS. The PDS secret's keys are added
by the stack's own custom-resource handler (infra/pds_secret_keys/handler.py), run here
against the local AWS as CloudFormation runs it on a deploy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from pds_aws.errors import PdsAwsError
from pds_aws.local.stack_resources import (
    AwsResources,
    SecretKeysSpec,
    SecretSpec,
    local_bucket_name,
    local_key_alias,
    local_secret_name,
)
from pds_aws.local.taskdef import LOCAL_AWS_CREDENTIALS, LocalAws
from pds_aws.names import SECRET_KEYS_RESOURCE_TYPE


class ProvisionError(PdsAwsError):
    """The template declares a resource the local AWS cannot stand in for."""


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


def _ensure_secret(secrets: Any, spec: SecretSpec) -> str:
    """The secret's ARN, creating it as CloudFormation would if the local AWS lacks it."""
    name = local_secret_name(spec.logical_id)
    try:
        return str(secrets.describe_secret(SecretId=name)["ARN"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    if spec.generate is None:
        # Neither GenerateSecretString nor SecretString: an empty secret, as on AWS.
        return str(secrets.create_secret(Name=name, Description=spec.description)["ARN"])
    # Secrets Manager generates the value, as GenerateSecretString does on AWS.
    generated = str(secrets.get_random_password(**spec.generate)["RandomPassword"])
    if spec.template and spec.generate_key:
        data = json.loads(spec.template)
        data[spec.generate_key] = generated
        generated = json.dumps(data)
    created = secrets.create_secret(Name=name, Description=spec.description, SecretString=generated)
    return str(created["ARN"])


def _fill_secret_keys(secrets: Any, spec: SecretKeysSpec, secret_arn: str) -> None:
    """Run the stack's own custom-resource handler against the local AWS (a Create, as at
    the first deploy; on later starts it finds every key and writes nothing)."""
    from pds_aws.infra.pds_secret_keys import handler

    event = {
        "RequestType": "Create",
        "LogicalResourceId": spec.logical_id,
        "ResourceType": SECRET_KEYS_RESOURCE_TYPE,
        "ResourceProperties": {**spec.properties, "SecretId": secret_arn},
    }
    try:
        handler.fill(secrets, event)
    except handler.SecretKeysError as exc:
        raise ProvisionError(f"local AWS: {exc}") from None


def _secret_string(secrets: Any, logical_id: str, arn: str) -> str:
    try:
        return str(secrets.get_secret_value(SecretId=arn)["SecretString"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    raise ProvisionError(
        f"the template's secret {logical_id} is empty and no {SECRET_KEYS_RESOURCE_TYPE} "
        f"resource fills it; the local runtime cannot give its value to a container"
    )


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
    secret_arns = {spec.logical_id: _ensure_secret(secrets, spec) for spec in resources.secrets}
    for filler in resources.secret_keys:
        _fill_secret_keys(secrets, filler, secret_arns[filler.secret_logical_id])
    secret_strings = {
        arn: _secret_string(secrets, logical_id, arn) for logical_id, arn in secret_arns.items()
    }
    return LocalAwsState(LocalAws(region, bucket_names, key_ids, secret_arns), secret_strings)


def rotation_public_key(endpoint: str, region: str, key_id: str) -> bytes:
    """The DER public key of a KMS key (tests compare it across restarts)."""
    kms = client("kms", endpoint, region)
    return bytes(kms.get_public_key(KeyId=key_id)["PublicKey"])
