"""What the pipeline's CodeBuild steps may do in the account, and nothing more.

The production steps (`pds-aws upgrade`, `pds-aws smoke -c`) act as an operator of one stack:
they read its outputs and secrets, drive its ECS service and one-off drill tasks, read its logs
and its backup (the restore point, the schema comparison). Their role has a fixed name
(stage_configs.production_steps_role_arn) that the production stack's backup bucket
admits. The test stage's teardown may only delete the test stacks.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from pds_aws.config import Config
from pds_aws.pipeline.stage_configs import production_steps_role_name

# ECS describes and registers task definitions only on "*" (no resource-level permission).
_ECS_UNSCOPED = ("ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition", "ecs:DescribeTasks")


def operator_statements(scope: Construct, config: Config) -> list[iam.PolicyStatement]:
    """An operator of the stack `config` names, as `pds-aws upgrade` and `smoke -c` need."""
    name = config.aws.stack_name
    stack = Stack.of(scope)
    account, region, partition = stack.account, stack.region, stack.partition
    prefix = f"arn:{partition}"
    return [
        iam.PolicyStatement(
            actions=["cloudformation:DescribeStacks", "cloudformation:DescribeStackResources"],
            resources=[f"{prefix}:cloudformation:{region}:{account}:stack/{name}/*"],
        ),
        iam.PolicyStatement(
            actions=["secretsmanager:GetSecretValue"],
            resources=[f"{prefix}:secretsmanager:{region}:{account}:secret:*"],
            conditions={
                "StringEquals": {"secretsmanager:ResourceTag/aws:cloudformation:stack-name": name}
            },
        ),
        iam.PolicyStatement(actions=list(_ECS_UNSCOPED), resources=["*"]),
        iam.PolicyStatement(
            actions=["ecs:DescribeServices", "ecs:UpdateService", "ecs:ListTasks", "ecs:RunTask"],
            resources=["*"],
            conditions={
                "ArnLike": {"ecs:cluster": f"{prefix}:ecs:{region}:{account}:cluster/{name}-*"}
            },
        ),
        iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[f"{prefix}:iam::{account}:role/{name}-*"],
            conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        ),
        iam.PolicyStatement(
            actions=["logs:GetLogEvents", "logs:FilterLogEvents"],
            resources=[f"{prefix}:logs:{region}:{account}:log-group:{name}-*"],
        ),
        iam.PolicyStatement(
            actions=["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"],
            resources=[
                f"{prefix}:s3:::{name.lower()}-storagebackupbucket*",
                f"{prefix}:s3:::{name.lower()}-storagebackupbucket*/*",
            ],
        ),
    ]


def teardown_statements(scope: Construct, test_config: Config) -> list[iam.PolicyStatement]:
    """Delete the test stack (and, direct edge, its us-east-1 stack), and wait for it."""
    from pds_aws.direct.health_stack import HEALTH_REGION, health_stack_name

    stack = Stack.of(scope)
    account, partition = stack.account, stack.partition
    names = [(test_config.aws.stack_name, test_config.aws.region)]
    if test_config.is_direct:
        names.append((health_stack_name(test_config), HEALTH_REGION))
    return [
        iam.PolicyStatement(
            actions=["cloudformation:DeleteStack", "cloudformation:DescribeStacks"],
            resources=[
                f"arn:{partition}:cloudformation:{region}:{account}:stack/{name}/*"
                for name, region in names
            ],
        ),
        # CloudFormation deletes with the role the stack was deployed with (CDK's bootstrap
        # execution role), which the caller passes on.
        iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[f"arn:{partition}:iam::{account}:role/cdk-*-cfn-exec-role-*"],
            conditions={"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}},
        ),
    ]


class ProductionStepsRole(Construct):
    """The role of the production stage's upgrade and smoke steps."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            role_name=production_steps_role_name(config),
            assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
            description=f"pds-aws pipeline: upgrade and smoke steps of {config.pds.domain}",
        )
        for statement in operator_statements(self, config):
            self.role.add_to_principal_policy(statement)
