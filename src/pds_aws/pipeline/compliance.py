"""cdk-nag acknowledgments of the pipeline stack, each with its reason.

The pipeline stack holds no PDS data: the artifacts are the repository's public code and the
synthesized templates. Most findings are on what CDK Pipelines generates itself (its roles'
grants, its CodeBuild projects); the rest are the production steps' operator permissions, scoped
by the production stack's name because that stack names its resources at deploy time.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_iam as iam

from pds_aws.infra.compliance import wildcard_findings

NO_SECRETS = (
    "Build artifacts are the repository's public code and the synthesized templates; no "
    "secret passes through them."
)
ACKNOWLEDGMENTS: dict[str, str] = {
    "AwsSolutions-CB4": NO_SECRETS + " CodeBuild encrypts them with the AWS-managed S3 key; a "
    "customer key would cost $1 a month and guard nothing secret.",
    "AwsSolutions-S1": "The artifact bucket is written and read only by this pipeline's roles; "
    "their calls are in CloudTrail, and access logs would need a second bucket.",
    "NIST.800.53.R5-S3BucketLoggingEnabled": "Same as AwsSolutions-S1: only this pipeline's "
    "roles use the artifact bucket.",
    "NIST.800.53.R5-S3BucketReplicationEnabled": "Artifacts are rebuilt from the repository by "
    "the next run; replicating them would only add cost.",
    "NIST.800.53.R5-S3DefaultEncryptionKMS": NO_SECRETS + " SSE-S3 encrypts them at rest.",
    "NIST.800.53.R5-IAMNoInlinePolicy": "CDK Pipelines and CDK grants write one policy per "
    "role, attached to that role only.",
}


LIBRARY_WILDCARDS = (
    "Written by CDK Pipelines and CDK grants: every object of this pipeline's artifact bucket "
    "(object keys are generated per run), the CodeBuild log groups and report groups named "
    "per build, and the bootstrap roles (cdk-*) that self-mutation and asset publishing assume."
)
OPERATOR_WILDCARDS = (
    "The production steps act as an operator of one stack: its resources' names are generated "
    "at deploy time, so they are matched by the production stack's name prefix (roles, log "
    "groups, backup bucket, secrets by their stack-name tag, ECS by cluster); ECS describes "
    "and registers task definitions only on '*'; backup object keys are named at runtime."
)
TEARDOWN_WILDCARDS = (
    "The test stack's id ends in a generated suffix (stack/NAME/*), and CloudFormation "
    "deletes with the bootstrap execution role (cdk-*-cfn-exec-role-*), whose qualifier the "
    "account chose at `cdk bootstrap`."
)


def acknowledge_pipeline_findings(
    stack: Stack, *, operator_policies: list[iam.Policy], teardown_policies: list[iam.Policy]
) -> None:
    """The stack-wide acknowledgments, and each policy's wildcards with the reason that fits."""
    Validations.of(stack).acknowledge(
        *(Acknowledgment(id=rule, reason=reason) for rule, reason in ACKNOWLEDGMENTS.items())
    )
    for node in stack.node.find_all():
        if not isinstance(node, iam.Policy):
            continue
        if node in operator_policies:
            reason = OPERATOR_WILDCARDS
        elif node in teardown_policies:
            reason = TEARDOWN_WILDCARDS + " " + LIBRARY_WILDCARDS
        else:
            reason = LIBRARY_WILDCARDS
        Validations.of(node).acknowledge(
            *(Acknowledgment(id=finding, reason=reason) for finding in wildcard_findings(node))
        )
