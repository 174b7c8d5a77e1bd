"""Which PDS an operator command talks to: the local runtime or a deployed stack.

The local runtime writes `.local/state.json`; a deployed stack publishes its endpoint and
resource names as CloudFormation outputs and keeps the admin password and the rate-limit
bypass key as JSON keys of the one PDS secret in Secrets Manager.
Turning either into a `Target` is pure (`local_target`, `stack_target`); reading the state
file or calling AWS is done by `resolve_target` at the edge, with the user's own AWS
profile and region.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pds_aws.config import ConfigError, load_config
from pds_aws.errors import LocalStateError
from pds_aws.names import (
    ADMIN_PASSWORD_KEY,
    CONFIG_ENV,
    RATE_LIMIT_BYPASS_KEY,
    STATE_FILE,
    LocalState,
)

if TYPE_CHECKING:
    import boto3

# CloudFormation outputs of the deployed stack that the operator commands read.
# The stack (stack.py) declares outputs with exactly these keys; a unit test checks the
# synthesized template against this table.
OUTPUT_URL = "Url"
# The PDS secret (key PDS_ADMIN_PASSWORD); before it was one secret, the admin password's own.
OUTPUT_ADMIN_SECRET = "AdminPasswordSecretArn"
OUTPUT_CLUSTER = "ClusterName"
OUTPUT_SERVICE = "ServiceName"
# Optional: without it the drill task definition is found among the stack's resources.
OUTPUT_DRILL_TASK = "DrillTaskDefinitionArn"
# Optional (stacks before rate limits were on have none): the secret holding the rate-limit
# bypass key (key PDS_RATE_LIMIT_BYPASS_KEY; the PDS secret again on current stacks).
OUTPUT_BYPASS_SECRET = "RateLimitBypassSecretArn"
REQUIRED_OUTPUTS: tuple[str, ...] = (OUTPUT_URL, OUTPUT_ADMIN_SECRET)
ECS_OUTPUTS: tuple[str, ...] = (OUTPUT_CLUSTER, OUTPUT_SERVICE)


class TargetError(ConfigError):
    """The target cannot be resolved; the message says what to do."""


@dataclass(frozen=True)
class StackResources:
    """The ECS names a deployed stack exposes (for drills, restores, shell and logs)."""

    stack_name: str
    region: str
    profile: str | None
    cluster: str
    service: str
    drill_task_definition: str  # "" when the stack has no such output


@dataclass(frozen=True)
class Target:
    """A running PDS: its public URL, admin password and how to reach its backups."""

    name: str
    url: str
    admin_password: str = field(repr=False)
    local_state: LocalState | None = field(default=None, repr=False)
    stack: StackResources | None = None
    # The URL the PDS's DID documents name, when it differs from `url` (locally).
    public_url: str | None = None
    # PDS_RATE_LIMIT_BYPASS_KEY, for tools that legitimately exceed the rate limits.
    rate_limit_bypass_key: str | None = field(default=None, repr=False)

    @property
    def hostname(self) -> str:
        """The PDS hostname as relays and handles know it."""
        return urlsplit(self.public_url or self.url).hostname or ""

    @property
    def is_local(self) -> bool:
        return self.local_state is not None


def local_target(state: LocalState) -> Target:
    """The local runtime's target, from its state (`.local/state.json`)."""
    return Target(
        name="local",
        url=state.url.rstrip("/"),
        admin_password=state.admin_password,
        local_state=state,
        public_url=state.public_url or None,
        rate_limit_bypass_key=state.rate_limit_bypass_key or None,
    )


def outputs_by_key(describe_stacks_response: Mapping[str, Any]) -> dict[str, str]:
    """`{OutputKey: OutputValue}` from a CloudFormation DescribeStacks response."""
    stacks = describe_stacks_response.get("Stacks") or []
    if not stacks:
        return {}
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def value_from_secret(secret_string: str, key: str, *legacy_keys: str) -> str:
    """One value of a secret: its JSON `key` (the PDS secret is one object of the PDS's
    variables), a `legacy_keys` entry, or the whole string (secrets of one value, as stacks
    deployed before the PDS secret was one object have)."""
    try:
        value = json.loads(secret_string)
    except json.JSONDecodeError:
        return secret_string
    if not isinstance(value, dict):
        return secret_string
    for name in (key, *legacy_keys):
        if isinstance(value.get(name), str):
            return str(value[name])
    raise TargetError(
        f"the PDS secret has no key {key} (it has {', '.join(sorted(value)) or 'none'}); "
        f'put the key back in the secret (guides/OPERATIONS.md, "Rotating the PDS secrets")'
    )


def admin_password_from_secret(secret_string: str) -> str:
    """The admin password from the secret's value: its `PDS_ADMIN_PASSWORD` key, a
    `{"password": ...}` object, or a plain string."""
    return value_from_secret(secret_string, ADMIN_PASSWORD_KEY, "password")


def stack_target(
    stack_name: str,
    region: str,
    outputs: Mapping[str, str],
    admin_password: str,
    profile: str | None = None,
    rate_limit_bypass_key: str | None = None,
) -> Target:
    """A deployed stack's target, from its outputs and the admin password."""
    missing = [key for key in REQUIRED_OUTPUTS if not outputs.get(key)]
    if missing:
        raise TargetError(
            f"stack {stack_name} in {region} has no output {', '.join(missing)}; deploy the "
            f"current version (`make deploy`) or check the stack name (--stack) and region"
        )
    stack = None
    if all(outputs.get(key) for key in ECS_OUTPUTS):
        stack = StackResources(
            stack_name=stack_name,
            region=region,
            profile=profile,
            cluster=outputs[OUTPUT_CLUSTER],
            service=outputs[OUTPUT_SERVICE],
            drill_task_definition=outputs.get(OUTPUT_DRILL_TASK, ""),
        )
    return Target(
        name=stack_name,
        url=outputs[OUTPUT_URL].rstrip("/"),
        admin_password=admin_password,
        stack=stack,
        rate_limit_bypass_key=rate_limit_bypass_key,
    )


@dataclass(frozen=True)
class TargetChoice:
    """What the command line asked for (see `add_target_options`)."""

    local: bool = False
    state_file: Path = STATE_FILE
    stack_name: str | None = None
    config_path: str | None = None
    profile: str | None = None
    region: str | None = None


def read_local_state(path: Path) -> LocalState:
    try:
        return LocalState.read(path)
    except LocalStateError as exc:
        raise TargetError(str(exc)) from None


def aws_session(profile: str | None, region: str | None) -> boto3.Session:
    """A boto3 session with the user's profile and region (endpoint overrides honoured)."""
    import boto3

    session = boto3.Session(profile_name=profile, region_name=region)
    if not session.region_name:
        raise TargetError(
            "no AWS region: pass --region, set one in the config ([aws] region) or in your "
            "AWS profile (aws configure)"
        )
    return session


def resolve_stack(session: boto3.Session, stack_name: str, profile: str | None = None) -> Target:
    """Read the stack's outputs and its admin password secret."""
    from botocore.exceptions import BotoCoreError, ClientError

    region = str(session.region_name)
    try:
        response = session.client("cloudformation").describe_stacks(StackName=stack_name)
    except ClientError as exc:
        raise TargetError(
            f"stack {stack_name} not found in {region} ({exc.response['Error']['Message']}); "
            f"check --stack / [aws] stack_name, the region and your AWS profile"
        ) from None
    except BotoCoreError as exc:
        raise TargetError(f"cannot reach CloudFormation in {region}: {exc}") from None
    outputs = outputs_by_key(dict(response))
    secret_arn = outputs.get(OUTPUT_ADMIN_SECRET)
    if not secret_arn:
        stack_target(stack_name, region, outputs, "")  # raises with the missing output named
    secrets = session.client("secretsmanager")
    read: dict[str, str] = {}

    def secret_string(arn: str, what: str) -> str:
        # Both outputs name the one PDS secret on current stacks: read it once.
        if arn not in read:
            try:
                read[arn] = str(secrets.get_secret_value(SecretId=arn)["SecretString"])
            except ClientError as exc:
                raise TargetError(
                    f"cannot read the {what} secret of stack {stack_name} "
                    f"({exc.response['Error']['Code']}); your AWS identity needs "
                    f"secretsmanager:GetSecretValue on it"
                ) from None
        return read[arn]

    password = admin_password_from_secret(secret_string(str(secret_arn), "admin password"))
    bypass_key = None
    if outputs.get(OUTPUT_BYPASS_SECRET):
        bypass_key = value_from_secret(
            secret_string(outputs[OUTPUT_BYPASS_SECRET], "rate-limit bypass key"),
            RATE_LIMIT_BYPASS_KEY,
        )
    return stack_target(stack_name, region, outputs, password, profile, bypass_key)


def resolve_target(choice: TargetChoice) -> Target:
    """The target the command line names: `--local`, `--stack NAME` or a config file."""
    if choice.local:
        return local_target(read_local_state(choice.state_file))
    config_path = choice.config_path or os.environ.get(CONFIG_ENV)
    region = choice.region
    stack_name = choice.stack_name
    if config_path:
        config = load_config(config_path)
        region = region or config.aws.region
        stack_name = stack_name or config.aws.stack_name
    if not stack_name:
        raise TargetError(
            "no target: pass --local (the local runtime), --stack NAME (a deployed stack) "
            f"or -c CONFIG (the stack of that config file; also read from ${CONFIG_ENV})"
        )
    session = aws_session(choice.profile, region)
    return resolve_stack(session, stack_name, choice.profile)
