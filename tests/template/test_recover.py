"""`[recover]`: a new stack adopts the retained backup bucket, blob bucket and rotation key.

What no emulator enforces, and what these tests assert instead on the template:

- An `AWS::S3::BucketPolicy` puts the bucket's policy: "If the bucket already has a policy, the
  one in this request completely replaces it" (S3 API reference, PutBucketPolicy,
  https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketPolicy.html; CloudFormation's
  AWS::S3::BucketPolicy "applies an Amazon S3 bucket policy to an Amazon S3 bucket",
  https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-s3-bucketpolicy.html).
  So the adopted bucket's policy must hold every statement a created bucket's policy holds,
  naming the new roles: the retained policy, naming the old stack's roles, is gone.
- A KMS key policy is changed only with PutKeyPolicy (or the console) by the key's own account
  (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying.html); an imported
  key (`Key.from_key_arn`) is not a CloudFormation resource of the stack. So the stack outputs
  the whole policy, naming the new task role, for the operator to put on the key.
- ECS injects `secrets` and reads the environment only when a task starts
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/specifying-sensitive-data.html):
  the adopted names are literal environment values of the task definition.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks

from pds_aws.config import Config, RecoverSettings
from pds_aws.cost.model import estimate
from pds_aws.infra.storage import ROTATION_KEY_ADMIN_ACTIONS, ROTATION_KEY_USE_ACTIONS
from pds_aws.infra.synth import CDK_CONTEXT, add_stack

BACKUP_BUCKET = "blueskypds-storagebackupbucket-old"
BLOB_BUCKET = "blueskypds-storageblobbucket-old"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:us-east-2:123456789012:key/{KEY_ID}"
ROLES = {
    "task": "PdsTaskDefinitionTaskRole",
    "drill": "BackupDrillTaskDefinitionTaskRole",
    "operator": "OperatorRole",
}


def recover_config(prod_config: Config) -> Config:
    """The prod fixture's settings plus `[recover]` (validated in tests/unit/test_recover_config)."""
    recover = RecoverSettings(
        backup_bucket=BACKUP_BUCKET, blob_bucket=BLOB_BUCKET, rotation_key_arn=KEY_ARN
    )
    return prod_config.model_copy(update={"recover": recover})


@pytest.fixture(scope="module")
def nagged(prod_config: Config, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One synth of the recover stack with cdk-nag's packs: its template, or its findings."""
    outdir: Path = tmp_path_factory.mktemp("recover")
    app = App(context=dict(CDK_CONTEXT), outdir=str(outdir))
    stack = add_stack(app, recover_config(prod_config))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), NIST80053R5Checks(app))
    try:
        template = app.synth().get_stack_by_name(stack.stack_name).template
    except Exception as exc:  # ValidationFailed: the report says what
        report = outdir / "validation-report.json"
        findings = [str(exc)]
        if report.exists():
            data = json.loads(report.read_text(encoding="utf-8"))
            findings = [
                f"{v['ruleName']} at {c['constructPath']}"
                for plugin in data["pluginReports"]
                for v in plugin["violations"]
                for c in v["violatingConstructs"]
            ]
        return {"template": None, "findings": findings}
    return {"template": template, "findings": []}


@pytest.fixture(scope="module")
def recover_template(nagged: dict[str, Any]) -> dict[str, Any]:
    if nagged["template"] is None:
        pytest.fail("the recover stack does not synthesize:\n" + "\n".join(nagged["findings"]))
    template: dict[str, Any] = nagged["template"]
    return template


def _of_type(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def _logical_id(template: dict[str, Any], kind: str, prefix: str) -> str:
    (match,) = [k for k in _of_type(template, kind) if k.startswith(prefix)]
    return match


def _normalize(node: Any, names: dict[str, str]) -> Any:
    """Resolve the created stack's bucket and key references to the adopted literals."""
    if isinstance(node, list):
        return [_normalize(item, names) for item in node]
    if not isinstance(node, dict):
        return node
    if list(node) == ["Fn::GetAtt"] and node["Fn::GetAtt"][0] in names:
        return names[node["Fn::GetAtt"][0]]
    if list(node) == ["Ref"] and node["Ref"] in names:
        return names[node["Ref"]]
    if list(node) == ["Fn::Join"]:
        separator, parts = node["Fn::Join"]
        resolved = _normalize(parts, names)
        if all(isinstance(part, str) for part in resolved):
            return separator.join(resolved)
        return {"Fn::Join": [separator, resolved]}
    return {key: _normalize(value, names) for key, value in node.items()}


@pytest.fixture(scope="module")
def created_names(prod_stack_template: dict[str, Any]) -> dict[str, str]:
    """The created prod stack's bucket and key ids -> what the recover stack names instead."""
    t = prod_stack_template
    blob = _logical_id(t, "AWS::S3::Bucket", "StorageBlobBucket")
    backup = _logical_id(t, "AWS::S3::Bucket", "StorageBackupBucket")
    key = _logical_id(t, "AWS::KMS::Key", "StoragePlcRotationKey")
    return {blob: BLOB_BUCKET, backup: BACKUP_BUCKET, key: KEY_ID}


def _arns(names: dict[str, str]) -> dict[str, str]:
    return {k: (KEY_ARN if v == KEY_ID else f"arn:aws:s3:::{v}") for k, v in names.items()}


def test_cdk_nag_has_no_unacknowledged_findings(nagged: dict[str, Any]) -> None:
    assert nagged["findings"] == []
    assert nagged["template"] is not None


def test_no_bucket_or_rotation_key_is_created(
    recover_template: dict[str, Any], prod_stack_template: dict[str, Any]
) -> None:
    created = set(_of_type(prod_stack_template, "AWS::S3::Bucket"))
    assert {k for k in created if k.startswith(("StorageBlob", "StorageBackup"))}
    assert not [k for k in _of_type(recover_template, "AWS::S3::Bucket") if "Storage" in k]
    keys = _of_type(recover_template, "AWS::KMS::Key")
    assert not [r for r in keys.values() if r["Properties"].get("KeySpec") == "ECC_SECG_P256K1"]


def test_task_and_drill_use_the_adopted_names(recover_template: dict[str, Any]) -> None:
    env: dict[str, str] = {}
    for task_def in _of_type(recover_template, "AWS::ECS::TaskDefinition").values():
        for container in task_def["Properties"]["ContainerDefinitions"]:
            for entry in container.get("Environment", []):
                env.setdefault(f"{container['Name']}:{entry['Name']}", entry["Value"])
    assert env["pds:PDS_BLOBSTORE_S3_BUCKET"] == BLOB_BUCKET
    assert env["pds:PDS_PLC_ROTATION_KEY_KMS_KEY_ID"] == KEY_ID
    backup_urls = {v for k, v in env.items() if k.endswith(":BACKUP_URL")}
    assert backup_urls == {f"s3://{BACKUP_BUCKET}/" + next(iter(backup_urls)).split("/", 3)[3]}


@pytest.mark.parametrize(
    ("bucket", "prefix"), [(BLOB_BUCKET, "StorageBlob"), (BACKUP_BUCKET, "StorageBackup")]
)
def test_adopted_bucket_policy_is_the_created_one_for_the_new_roles(
    bucket: str,
    prefix: str,
    recover_template: dict[str, Any],
    prod_stack_template: dict[str, Any],
    created_names: dict[str, str],
) -> None:
    """Same statements as a created bucket's policy: TLS only, VPC endpoint only, reads by the
    new task, drill and operator roles only; retained when the stack is deleted."""
    policies = _of_type(recover_template, "AWS::S3::BucketPolicy")
    (adopted,) = [p for p in policies.values() if p["Properties"]["Bucket"] == bucket]
    assert adopted["DeletionPolicy"] == "Retain"
    created_id = _logical_id(prod_stack_template, "AWS::S3::BucketPolicy", prefix)
    created = prod_stack_template["Resources"][created_id]["Properties"]["PolicyDocument"]
    expected = _normalize(created, _arns(created_names))
    assert adopted["Properties"]["PolicyDocument"] == expected
    if bucket == BACKUP_BUCKET:
        (reads,) = [
            s for s in expected["Statement"] if s.get("Sid") == "OnlyThePdsRolesReadBackups"
        ]
        readers = reads["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
        assert [r["Fn::GetAtt"][0].startswith(tuple(ROLES.values())) for r in readers] == [True] * 3


def test_roles_get_the_same_access_as_in_a_created_stack(
    recover_template: dict[str, Any],
    prod_stack_template: dict[str, Any],
    created_names: dict[str, str],
) -> None:
    """Task, drill and operator role policies: identical once bucket and key are resolved."""
    for role_prefix in ROLES.values():
        created = [
            r["Properties"]["PolicyDocument"]
            for k, r in _of_type(prod_stack_template, "AWS::IAM::Policy").items()
            if k.startswith(role_prefix)
        ]
        adopted = [
            r["Properties"]["PolicyDocument"]
            for k, r in _of_type(recover_template, "AWS::IAM::Policy").items()
            if k.startswith(role_prefix)
        ]
        assert created, role_prefix
        assert adopted == [_normalize(doc, _arns(created_names)) for doc in created], role_prefix


def test_key_policy_output_names_the_new_task_role(recover_template: dict[str, Any]) -> None:
    outputs = recover_template["Outputs"]
    assert outputs["RotationKeyArn"]["Value"] == KEY_ARN
    separator, parts = outputs["RotationKeyPolicy"]["Value"]["Fn::Join"]
    (role,) = [p for p in parts if isinstance(p, dict)]
    assert role["Fn::GetAtt"][0].startswith(ROLES["task"])
    policy = json.loads(separator.join(p if isinstance(p, str) else "ROLE" for p in parts))
    admin, sign = policy["Statement"]
    assert admin["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert admin["Action"] == list(ROTATION_KEY_ADMIN_ACTIONS)
    assert "kms:Sign" not in admin["Action"]
    assert sign == {
        "Sid": "OnlyThePdsSigns",
        "Effect": "Allow",
        "Principal": {"AWS": "ROLE"},
        "Action": list(ROTATION_KEY_USE_ACTIONS),
        "Resource": "*",
    }


def test_created_stack_has_no_key_policy_output(prod_stack_template: dict[str, Any]) -> None:
    assert "RotationKeyPolicy" not in prod_stack_template["Outputs"]


def test_cost_of_a_recovered_stack_is_that_of_a_created_one(
    recover_template: dict[str, Any], prod_stack_template: dict[str, Any], prod_config: Config
) -> None:
    """The adopted buckets and key cost what they did; the two bucket policies are free."""
    recovered = estimate(recover_template, recover_config(prod_config))
    created = estimate(prod_stack_template, prod_config)
    assert not recovered.unpriced
    assert recovered.total_monthly == pytest.approx(created.total_monthly)
    assert recovered.fixed_monthly == pytest.approx(created.fixed_monthly)
