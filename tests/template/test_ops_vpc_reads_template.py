"""What lets `pds-aws status` and `backup restore --at latest` read prod backups in the VPC.

The backup bucket denies object reads and writes that do not come through the VPC's S3 gateway
endpoint (condition `aws:SourceVpce`; AWS docs, "Controlling access from VPC endpoints with
bucket policies"). The operator CLI therefore runs `pds-aws-backup status` as a one-off task of
the drill task definition (tests/unit/test_ops_vpc_reads.py): a Fargate task in the VPC whose
drill container runs the backup program and whose role may read the backup bucket.
"""

from __future__ import annotations

from typing import Any

from pds_aws.names import DRILL_CONTAINER as DRILL_CONTAINER_NAME


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_backup_reads_are_denied_outside_the_vpc_endpoint(
    prod_stack_template: dict[str, Any],
) -> None:
    statements = [
        statement
        for policy in resources(prod_stack_template, "AWS::S3::BucketPolicy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Sid") == "OnlyThroughVpcEndpoint"
    ]
    assert statements, "no bucket denies access outside the VPC endpoint"
    for statement in statements:
        assert statement["Effect"] == "Deny"
        assert "s3:GetObject*" in statement["Action"]
        assert "aws:SourceVpce" in statement["Condition"]["StringNotEquals"]


def test_the_drill_task_runs_the_backup_program_inside_the_vpc(
    prod_stack_template: dict[str, Any],
) -> None:
    drills = [
        definition["Properties"]
        for definition in resources(prod_stack_template, "AWS::ECS::TaskDefinition").values()
        if any(
            c["Name"] == DRILL_CONTAINER_NAME
            for c in definition["Properties"]["ContainerDefinitions"]
        )
    ]
    assert len(drills) == 1
    drill = drills[0]
    # awsvpc on Fargate: the one-off task gets an interface in the stack's VPC, whose S3
    # traffic goes through the gateway endpoint.
    assert drill["NetworkMode"] == "awsvpc"
    assert drill["RequiresCompatibilities"] == ["FARGATE"]
    container = next(c for c in drill["ContainerDefinitions"] if c["Name"] == DRILL_CONTAINER_NAME)
    # A RunTask command override replaces this: the same program runs `status` instead.
    assert container["Command"][0] == "pds-aws-backup"
