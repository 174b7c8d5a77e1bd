"""The operator role: the one principal besides the PDS task and the drill that may read backups.

The backup bucket holds every account's signing key, so its policy denies object reads to
every principal but three roles, matched by `aws:PrincipalArn` (a role's tags could be changed
by anyone with iam:TagRole; its ARN cannot). People and the `pds-aws` CLI read backups by
assuming this role; its fixed path (OPERATOR_ROLE_PATH) lets a recovered stack, or an auditor,
find it by ARN pattern.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from constructs import Construct

from pds_aws.config import Config
from pds_aws.infra.compliance import acknowledge

OPERATOR_ROLE_PATH = "/pds-aws/"


class Operator(Construct):
    """The operator role, assumable by principals of this account that IAM allows to."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            path=OPERATOR_ROLE_PATH,
            assumed_by=iam.AccountRootPrincipal(),
            description=f"pds-aws operator of {config.pds.domain}: reads the PDS backups",
        )
        acknowledge(
            self,
            {
                "NIST.800.53.R5-IAMNoInlinePolicy": (
                    "CDK grants write one policy attached to this role only, scoped to the "
                    "backup bucket."
                ),
            },
        )
