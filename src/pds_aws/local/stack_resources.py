"""The AWS resources the task uses (buckets, KMS keys, secrets and what fills them), read from
the synthesized template, and the names they get in the local AWS (moto server)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pds_aws.local.taskdef import TaskDefinitionError
from pds_aws.names import SECRET_KEYS_RESOURCE_TYPE


@dataclass(frozen=True)
class BucketSpec:
    logical_id: str
    versioned: bool


@dataclass(frozen=True)
class KeySpec:
    logical_id: str
    key_spec: str
    key_usage: str
    description: str


@dataclass(frozen=True)
class SecretSpec:
    logical_id: str
    description: str
    # Secrets Manager GetRandomPassword arguments, from GenerateSecretString; None when the
    # template has neither it nor a SecretString: CloudFormation then creates an empty secret.
    generate: Mapping[str, Any] | None
    # SecretStringTemplate + GenerateStringKey: the generated value goes under this JSON key.
    template: str | None = None
    generate_key: str | None = None


@dataclass(frozen=True)
class SecretKeysSpec:
    """A custom resource that fills a secret's keys (its handler runs locally as on AWS)."""

    logical_id: str
    secret_logical_id: str  # the secret its `SecretId` refers to
    properties: Mapping[str, Any]  # the other resource properties, ServiceToken left out


@dataclass(frozen=True)
class AwsResources:
    buckets: tuple[BucketSpec, ...]
    keys: tuple[KeySpec, ...]
    secrets: tuple[SecretSpec, ...]
    secret_keys: tuple[SecretKeysSpec, ...] = ()


_PASSWORD_OPTIONS = (
    "PasswordLength",
    "ExcludeCharacters",
    "ExcludeNumbers",
    "ExcludePunctuation",
    "ExcludeUppercase",
    "ExcludeLowercase",
    "IncludeSpace",
    "RequireEachIncludedType",
)


def read_aws_resources(template: Mapping[str, Any]) -> AwsResources:
    """The buckets, KMS keys and secrets declared in the template, and what fills secrets."""
    buckets: list[BucketSpec] = []
    keys: list[KeySpec] = []
    secrets: list[SecretSpec] = []
    secret_keys: list[SecretKeysSpec] = []
    for logical_id, resource in template.get("Resources", {}).items():
        kind = resource.get("Type")
        props = resource.get("Properties", {})
        if kind == "AWS::S3::Bucket":
            versioning = props.get("VersioningConfiguration", {}).get("Status")
            buckets.append(BucketSpec(logical_id, versioned=versioning == "Enabled"))
        elif kind == "AWS::KMS::Key":
            keys.append(
                KeySpec(
                    logical_id,
                    key_spec=str(props.get("KeySpec", "SYMMETRIC_DEFAULT")),
                    key_usage=str(props.get("KeyUsage", "ENCRYPT_DECRYPT")),
                    description=str(props.get("Description", "")),
                )
            )
        elif kind == "AWS::SecretsManager::Secret":
            gen = props.get("GenerateSecretString")
            secrets.append(
                SecretSpec(
                    logical_id,
                    description=str(props.get("Description", "")),
                    generate=(
                        {k: gen[k] for k in _PASSWORD_OPTIONS if k in gen}
                        if isinstance(gen, dict)
                        else None
                    ),
                    template=gen.get("SecretStringTemplate") if isinstance(gen, dict) else None,
                    generate_key=gen.get("GenerateStringKey") if isinstance(gen, dict) else None,
                )
            )
        elif kind == SECRET_KEYS_RESOURCE_TYPE:
            secret_id = props.get("SecretId")
            if not (isinstance(secret_id, dict) and isinstance(secret_id.get("Ref"), str)):
                raise TaskDefinitionError(
                    f"{logical_id} ({kind}): SecretId must be a Ref to a secret of the template, "
                    f"not {secret_id!r}"
                )
            secret_keys.append(
                SecretKeysSpec(
                    logical_id,
                    secret_logical_id=secret_id["Ref"],
                    properties={
                        k: v for k, v in props.items() if k not in ("ServiceToken", "SecretId")
                    },
                )
            )
    return AwsResources(tuple(buckets), tuple(keys), tuple(secrets), tuple(secret_keys))


def local_bucket_name(stack_name: str, logical_id: str) -> str:
    """A valid, stable S3 bucket name for a bucket of the stack."""
    name = re.sub(r"[^a-z0-9-]", "-", f"{stack_name}-{logical_id}".lower()).strip("-")
    return name[:63].rstrip("-")


def local_secret_name(logical_id: str) -> str:
    return f"pds-local/{logical_id}"


def local_key_alias(logical_id: str) -> str:
    return f"alias/pds-local/{logical_id}"
