"""The PDS's generated secrets, in one Secrets Manager secret (a JSON object).

Secrets Manager bills per secret ($0.40 a month each), and the PDS needs three generated
values: the admin password, the JWT secret and the rate-limit bypass key. CloudFormation's
GenerateSecretString makes one value per secret, so the secret is created empty and a
deploy-time custom resource (pds_secret_keys/handler.py) adds the missing keys; ECS injects
each key as its own variable (`valueFrom` with a JSON key). The SMTP URL stays the e-mail
component's secret: its custom resource rewrites it whole on a new access key.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Acknowledgment, CustomResource, RemovalPolicy, Validations
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from pds_aws.config import Config
from pds_aws.infra.compliance import skip_checkov
from pds_aws.infra.custom_resource import HandlerSpec, deploy_time_handler
from pds_aws.infra.storage import removal_policy
from pds_aws.names import (
    ADMIN_PASSWORD_KEY,
    JWT_SECRET_KEY,
    RATE_LIMIT_BYPASS_KEY,
    SECRET_KEYS_RESOURCE_TYPE,
)

KEYS_HANDLER = HandlerSpec(
    code_directory=Path(__file__).resolve().parent / "pds_secret_keys",
    description="Adds the missing keys of the PDS secret, never overwriting one",
    apis="Secrets Manager",
    log_contents="only the names of the keys it added or kept",
)
HANDLER_ACTIONS = ("secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue")
# JSON key -> length of its random letters and digits (the lengths GenerateSecretString made
# before the three secrets became one). The rate-limit bypass key is sent by operator tools
# (smoke, doctor, benchmarks) in the x-ratelimit-bypass header; anyone holding it can exceed
# the rate limits, so it is a secret too.
GENERATED_KEYS: dict[str, int] = {
    ADMIN_PASSWORD_KEY: 32,
    JWT_SECRET_KEY: 64,
    RATE_LIMIT_BYPASS_KEY: 48,
}


def task_secret(
    scope: Construct, construct_id: str, *, description: str, removal: RemovalPolicy
) -> secretsmanager.Secret:
    """A secret ECS hands the PDS task at start, under the account's aws/secretsmanager key."""
    secret = secretsmanager.Secret(
        scope, construct_id, description=description, removal_policy=removal
    )
    skip_checkov(
        secret,
        {"CKV_AWS_149": "the aws/secretsmanager key suffices: one reader, the task"},
    )
    return secret


class PdsSecret(Construct):
    """The secret holding every generated PDS secret, and the custom resource filling it."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config) -> None:
        super().__init__(scope, construct_id)
        self.secret = task_secret(
            self,
            "Secret",
            description=(
                f"{', '.join(GENERATED_KEYS)} of {config.pds.domain}: one JSON object, "
                "keys added by the PDS secret keys custom resource"
            ),
            removal=removal_policy(config),
        )
        # Neither GenerateSecretString nor SecretString: CloudFormation creates an empty
        # secret (no value in the template) and never writes it again; the handler fills it.
        self.secret.node.default_child.add_property_deletion_override(  # type: ignore[union-attr]
            "GenerateSecretString"
        )
        handler = deploy_time_handler(self, "Keys", KEYS_HANDLER, config=config)
        # Read and write the value of this one secret, nothing else (no UpdateSecret: its
        # key, description and policy stay CloudFormation's).
        handler.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=list(HANDLER_ACTIONS),
                resources=[self.secret.secret_arn],
            )
        )
        self.keys = CustomResource(
            self,
            "Keys",
            service_token=handler.service_token,
            resource_type=SECRET_KEYS_RESOURCE_TYPE,
            properties={
                "SecretId": self.secret.secret_arn,
                "Keys": {key: str(length) for key, length in GENERATED_KEYS.items()},
            },
        )
        self._acknowledge_findings()

    def ecs_secrets(self) -> dict[str, ecs.Secret]:
        """Each generated key as the task variable of the same name (`valueFrom` NAME:KEY::).

        The task must start after the keys exist: the service depends on `self.keys`."""
        return {
            key: ecs.Secret.from_secrets_manager(self.secret, field=key) for key in GENERATED_KEYS
        }

    def _acknowledge_findings(self) -> None:
        Validations.of(self).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SMG4",
                reason="The PDS cannot take a rotated admin password, JWT secret or rate-limit "
                "bypass key without a restart, and rotating the JWT secret signs every user "
                "out; rotate by hand, one JSON key at a time (see guides/OPERATIONS.md).",
            ),
            Acknowledgment(
                id="NIST.800.53.R5-SecretsManagerRotationEnabled",
                reason="Same as AwsSolutions-SMG4: no automatic rotation of PDS secrets.",
            ),
            Acknowledgment(
                id="NIST.800.53.R5-SecretsManagerUsingKMSKey",
                reason="Encrypted with the account's aws/secretsmanager key; only the task's "
                "execution role and the keys handler read it, so a customer key would add "
                "cost, not protection.",
            ),
            Acknowledgment(
                id="NIST.800.53.R5-IAMNoInlinePolicy",
                reason="The keys handler's role may read and write only the PDS secret; the "
                "provider's may invoke only the handler function.",
            ),
        )
