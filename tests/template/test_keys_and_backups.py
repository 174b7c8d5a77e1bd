"""Issue 9: the rotation key and the backups are usable only by those who need them.

moto, the emulator of the integration tests, ignores KMS key policies and S3 bucket policies
(it evaluates neither), so no local run can show these denials: the tests assert the policies
in the synthesized template, with the AWS document that gives them their effect.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

Template = dict[str, Any]
SIGNING_ACTIONS = ("kms:Sign", "kms:GetPublicKey")


def resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _task_roles(template: Template) -> tuple[dict[str, Any], dict[str, Any]]:
    """(PDS task role ARN, drill task role ARN) as the template writes them."""
    (service,) = resources(template, "AWS::ECS::Service").values()
    service_task = service["Properties"]["TaskDefinition"]["Ref"]
    definitions = resources(template, "AWS::ECS::TaskDefinition")
    (drill_task,) = [k for k in definitions if k != service_task]
    return (
        definitions[service_task]["Properties"]["TaskRoleArn"],
        definitions[drill_task]["Properties"]["TaskRoleArn"],
    )


def _operator_role(template: Template) -> tuple[str, dict[str, Any]]:
    value = template["Outputs"]["OperatorRoleArn"]["Value"]
    role_id = value["Fn::GetAtt"][0]
    return role_id, template["Resources"][role_id]


def _key_statements(template: Template) -> list[dict[str, Any]]:
    (key,) = resources(template, "AWS::KMS::Key").values()
    return list(key["Properties"]["KeyPolicy"]["Statement"])


def _may(statement: dict[str, Any], action: str) -> bool:
    return statement["Effect"] == "Allow" and any(
        fnmatchcase(action.lower(), pattern.lower()) for pattern in _listed(statement["Action"])
    )


def test_only_the_pds_task_role_may_sign_with_the_rotation_key(
    stack_template: Template, prod_stack_template: Template
) -> None:
    """KMS Developer Guide, "Default key policy" ("Allows access to the AWS account and
    enables IAM policies"): a key-policy statement giving the account `kms:*` lets any IAM
    policy of the account grant every operation on the key, so anyone with `kms:Sign` on "*"
    could sign PLC operations for every account. CDK's kms.Key writes that statement unless
    the stack gives its own policy (aws-cdk-lib aws-kms key.ts, addDefaultAdminPolicy). Here
    only the task role is named for Sign and GetPublicKey; the account keeps administration
    without any action that signs or hands out signing (kms:CreateGrant)."""
    for template in (stack_template, prod_stack_template):
        task_role, _ = _task_roles(template)
        statements = _key_statements(template)
        for action in SIGNING_ACTIONS:
            allowed = [s for s in statements if _may(s, action)]
            assert [s["Principal"] for s in allowed] == [{"AWS": task_role}], action
        (admin,) = [s for s in statements if ":root" in str(s["Principal"])]
        for action in (*SIGNING_ACTIONS, "kms:CreateGrant", "kms:Decrypt"):
            assert not _may(admin, action), action
        # The account can still administer, and rewrite the policy for a recovery.
        for action in ("kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:DescribeKey"):
            assert _may(admin, action), action


def _backup_bucket_id(template: Template) -> str:
    return str(template["Outputs"]["BackupBucketName"]["Value"]["Ref"])


def _bucket_statements(template: Template, bucket_id: str) -> list[dict[str, Any]]:
    (policy,) = [
        p
        for p in resources(template, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def test_backup_objects_are_readable_only_by_the_task_the_drill_and_the_operator(
    stack_template: Template, prod_stack_template: Template
) -> None:
    """S3 User Guide, "Bucket policies" and IAM User Guide, "Policy evaluation logic": an
    explicit Deny in a bucket policy overrides any Allow of an identity policy, for every
    principal of the account. `aws:PrincipalArn` (IAM User Guide, "AWS global condition
    context keys") is the ARN of the role, not of its session, and cannot be changed by
    tagging: a tag condition (aws:PrincipalTag) would let anyone with iam:TagRole in."""
    for template in (stack_template, prod_stack_template):
        bucket_id = _backup_bucket_id(template)
        task_role, drill_role = _task_roles(template)
        operator_id, _ = _operator_role(template)
        (deny,) = [
            s
            for s in _bucket_statements(template, bucket_id)
            if s["Effect"] == "Deny" and "aws:PrincipalArn" in str(s.get("Condition"))
        ]
        assert deny["Principal"] == {"AWS": "*"}
        assert "s3:GetObject*" in _listed(deny["Action"])
        assert deny["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/*"]]}
        assert deny["Condition"] == {
            "ArnNotEquals": {
                "aws:PrincipalArn": [
                    task_role,
                    drill_role,
                    {"Fn::GetAtt": [operator_id, "Arn"]},
                ]
            }
        }
        assert "PrincipalTag" not in str(_bucket_statements(template, bucket_id))


def test_the_operator_role_has_the_fixed_path_and_may_read_backups(
    stack_template: Template,
) -> None:
    """The operator role is the `pds-aws` CLI's and a person's way to the backups: a fixed
    IAM path (IAM User Guide, "IAM identifiers": paths) puts it where a recovered stack
    and an auditor look for it; the stack outputs its ARN."""
    operator_id, role = _operator_role(stack_template)
    assert role["Properties"]["Path"] == "/pds-aws/"
    bucket_id = _backup_bucket_id(stack_template)
    actions = {
        action
        for p in resources(stack_template, "AWS::IAM::Policy").values()
        if {"Ref": operator_id} in p["Properties"].get("Roles", [])
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if bucket_id in str(s["Resource"])
        for action in _listed(s["Action"])
    }
    assert "s3:GetObject" in actions
    assert not any(a.startswith(("s3:Put", "s3:Delete")) for a in actions)
