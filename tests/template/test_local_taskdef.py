"""The local runtime's containers come from the synthesized task definition (no second copy)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from helpers import container, environment
from pds_aws.local import taskdef
from pds_aws.local.stack_resources import local_bucket_name, read_aws_resources
from pds_aws.local.taskdef import (
    LocalAws,
    LocalEndpoints,
    SecretRef,
    TaskDefinitionError,
    container_environment,
    find_task_definition,
    parse_secret_value_from,
    read_task_definition,
    resolve,
)

SECRET_ARN_PREFIX = "arn:aws:secretsmanager:us-east-2:123456789012:secret:"


@pytest.fixture(scope="module")
def template(stack_template: dict[str, Any]) -> dict[str, Any]:
    """The example config's template (synthesized once per session in conftest.py)."""
    return stack_template


def local_aws_for(template: dict[str, Any]) -> LocalAws:
    resources = read_aws_resources(template)
    return LocalAws(
        region="us-east-2",
        bucket_names={
            b.logical_id: local_bucket_name("BlueskyPds", b.logical_id) for b in resources.buckets
        },
        kms_key_ids={k.logical_id: f"local-key-{i}" for i, k in enumerate(resources.keys)},
        secret_arns={
            s.logical_id: f"{SECRET_ARN_PREFIX}pds-local/{s.logical_id}-AbCdEf"
            for s in resources.secrets
        },
    )


ENDPOINTS = LocalEndpoints(
    aws_url="http://127.0.0.1:4001",
    plc_url="http://localhost:4002",
    smtp_url="smtp://127.0.0.1:4003",
    public_port=4004,
    pds_listen_port=4005,
    region="us-east-2",
    volumes={"pds-data": Path("/home/dev/.local/data")},
    bin_dir=Path("/venv/bin"),
)


def pds_env(template: dict[str, Any]) -> dict[str, str]:
    task = read_task_definition(template, local_aws_for(template))
    pds = task.containers["pds"]
    secrets = {name: f"value-of-{name}" for name in pds.secrets}
    return container_environment(pds, secret_values=secrets, endpoints=ENDPOINTS)


def test_stack_environment_change_reaches_the_local_run_with_no_second_edit(
    stack_template: dict[str, Any], prod_stack_template: dict[str, Any]
) -> None:
    # Two configs through the same code path (conftest: the prod variant has
    # invite_required = false and a contact e-mail): the stack computes the environment,
    # the local runtime follows.
    example_env, prod_env = pds_env(stack_template), pds_env(prod_stack_template)
    assert example_env["PDS_INVITE_REQUIRED"] == "true"
    assert prod_env["PDS_INVITE_REQUIRED"] == "false"
    assert "PDS_CONTACT_EMAIL_ADDRESS" not in example_env
    assert prod_env["PDS_CONTACT_EMAIL_ADDRESS"] == "admin@example.com"


def test_a_variable_added_to_the_task_definition_appears_locally(template: dict[str, Any]) -> None:
    patched = copy.deepcopy(template)
    blob_bucket = environment(patched, "pds")["PDS_BLOBSTORE_S3_BUCKET"]
    container(patched, "pds")["Environment"].append(
        {"Name": "PDS_NEW_SETTING", "Value": {"Fn::Join": ["/", [blob_bucket, "x"]]}}
    )
    assert "PDS_NEW_SETTING" not in pds_env(template)
    expected_bucket = local_aws_for(template).bucket_names[blob_bucket["Ref"]]
    assert pds_env(patched)["PDS_NEW_SETTING"] == f"{expected_bucket}/x"


def test_aws_references_map_to_local_counterparts(template: dict[str, Any]) -> None:
    env = pds_env(template)
    aws = local_aws_for(template)
    assert env["PDS_BLOBSTORE_S3_BUCKET"] in aws.bucket_names.values()
    assert env["PDS_PLC_ROTATION_KEY_KMS_KEY_ID"] in aws.kms_key_ids.values()
    assert env["PDS_ADMIN_PASSWORD"] == "value-of-PDS_ADMIN_PASSWORD"
    assert env["PDS_JWT_SECRET"] == "value-of-PDS_JWT_SECRET"
    # The mount path /pds is the host directory of the task volume.
    assert env["PDS_DATA_DIRECTORY"] == "/home/dev/.local/data"
    assert env["PDS_SQLITE_DISABLE_WAL_AUTO_CHECKPOINT"] == "true"


def test_local_substitutions_keep_everything_on_this_machine(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CA_BUNDLE", "/etc/ssl/corp.pem")
    monkeypatch.setenv("AWS_PROFILE", "production")
    env = pds_env(template)
    assert env["PDS_HOSTNAME"] == "localhost"
    assert env["PDS_PORT"] == "4004"  # the edge: the PDS's public URL
    assert env["PDS_LOCAL_LISTEN_PORT"] == "4005"
    assert env["PDS_DID_PLC_URL"] == "http://localhost:4002"
    assert env["PDS_SERVICE_HANDLE_DOMAINS"] == ".test"
    assert env["PDS_BLOBSTORE_S3_ENDPOINT"] == "http://127.0.0.1:4001"
    assert env["PDS_BLOBSTORE_S3_FORCE_PATH_STYLE"] == "true"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4001"
    assert env["PDS_EMAIL_SMTP_URL"] == "smtp://127.0.0.1:4003"
    for name in taskdef.REMOVED_PDS_ENVIRONMENT:
        assert name not in env
    assert "AWS_CA_BUNDLE" not in env
    assert "AWS_PROFILE" not in env
    assert all("amazonaws.com" not in v and "bsky" not in v for v in env.values())


def test_pds_health_check_runs_against_the_local_port(template: dict[str, Any]) -> None:
    pds = read_task_definition(template, local_aws_for(template)).containers["pds"]
    assert pds.health_check is not None
    argv = pds.health_check.argv(taskdef.local_ports(pds, ENDPOINTS))
    assert argv[:2] == ["/bin/sh", "-c"]
    assert "127.0.0.1:4005/xrpc/_health" in argv[2]
    assert ":3000" not in argv[2]


def test_pds_runs_the_launcher_other_containers_their_task_command(
    template: dict[str, Any],
) -> None:
    task = read_task_definition(template, local_aws_for(template))
    argv = taskdef.local_command(task.containers["pds"], node=Path("/n"), launcher=Path("/l.cjs"))
    assert argv == ["/n", "--enable-source-maps", "/l.cjs"]


def _container(name: str, **extra: Any) -> dict[str, Any]:
    return {"Name": name, "Image": "x", **extra}


def _template_with(*containers: dict[str, Any], **resources: Any) -> dict[str, Any]:
    return {
        "Resources": {
            "Task": {
                "Type": "AWS::ECS::TaskDefinition",
                "Properties": {
                    "ContainerDefinitions": list(containers),
                    "Volumes": [{"Name": "v"}],
                },
            },
            **resources,
        }
    }


EMPTY_AWS = LocalAws("eu-west-1", {}, {}, {})


def test_start_order_honours_depends_on() -> None:
    template = _template_with(
        _container("pds", DependsOn=[{"ContainerName": "backup", "Condition": "HEALTHY"}]),
        _container("backup", Command=["pds-aws-backup", "run"]),
        _container("zz-first"),
    )
    task = read_task_definition(template, EMPTY_AWS)
    order = task.start_order()
    assert order.index("backup") < order.index("pds")
    assert task.containers["pds"].depends_on == (("backup", "HEALTHY"),)
    assert taskdef.local_command(task.containers["backup"], node=Path("n"), launcher=Path("l")) == [
        "pds-aws-backup",
        "run",
    ]


def test_dependency_cycle_is_reported() -> None:
    template = _template_with(
        _container("pds", DependsOn=[{"ContainerName": "backup", "Condition": "START"}]),
        _container("backup", DependsOn=[{"ContainerName": "pds", "Condition": "START"}]),
    )
    with pytest.raises(TaskDefinitionError, match="cycle"):
        read_task_definition(template, EMPTY_AWS).start_order()


def test_container_without_command_is_reported() -> None:
    task = read_task_definition(_template_with(_container("pds"), _container("backup")), EMPTY_AWS)
    with pytest.raises(TaskDefinitionError, match="no command"):
        taskdef.local_command(task.containers["backup"], node=Path("n"), launcher=Path("l"))


def test_template_without_pds_task_definition_is_reported() -> None:
    with pytest.raises(TaskDefinitionError, match="container named 'pds'"):
        find_task_definition(_template_with(_container("web")))


def test_intrinsics_resolve() -> None:
    template: dict[str, Any] = {
        "Resources": {
            "Blobs": {"Type": "AWS::S3::Bucket"},
            "Key": {"Type": "AWS::KMS::Key"},
            "Logs": {"Type": "AWS::Logs::LogGroup"},
        }
    }
    aws = LocalAws("eu-west-1", {"Blobs": "local-blobs"}, {"Key": "kid"}, {})
    assert resolve({"Fn::Sub": "s3://${Blobs}/pds"}, template, aws) == "s3://local-blobs/pds"
    assert resolve({"Fn::Sub": "${Blobs.Arn}/*"}, template, aws) == "arn:aws:s3:::local-blobs/*"
    assert resolve({"Fn::GetAtt": ["Key", "Arn"]}, template, aws).endswith(":key/kid")
    assert resolve({"Fn::Select": [1, {"Fn::Split": [",", "a,b"]}]}, template, aws) == "b"
    assert resolve({"Ref": "AWS::Region"}, template, aws) == "eu-west-1"
    assert resolve({"Ref": "Logs"}, template, aws) == "local-Logs"
    with pytest.raises(TaskDefinitionError, match="Fn::If"):
        resolve({"Fn::If": ["C", "a", "b"]}, template, aws)
    with pytest.raises(TaskDefinitionError, match="Nope"):
        resolve({"Ref": "Nope"}, template, aws)


def test_secret_value_from_forms() -> None:
    arn = "arn:aws:secretsmanager:us-east-2:123456789012:secret:pds-local/Smtp-AbCdEf"
    assert parse_secret_value_from(arn) == SecretRef(arn)
    assert parse_secret_value_from(arn + ":url::") == SecretRef(arn, "url")
    assert taskdef.secret_value('{"url": "smtp://x"}', SecretRef(arn, "url")) == "smtp://x"
    assert taskdef.secret_value("plain", SecretRef(arn)) == "plain"
    with pytest.raises(TaskDefinitionError, match="no JSON key"):
        taskdef.secret_value("{}", SecretRef(arn, "url"))


def test_missing_secret_value_is_reported(template: dict[str, Any]) -> None:
    pds = read_task_definition(template, local_aws_for(template)).containers["pds"]
    with pytest.raises(TaskDefinitionError, match="PDS_ADMIN_PASSWORD"):
        container_environment(pds, secret_values={}, endpoints=ENDPOINTS)


def test_aws_resources_read_from_the_template(template: dict[str, Any]) -> None:
    resources = read_aws_resources(template)
    assert any(
        k.key_spec == "ECC_SECG_P256K1" and k.key_usage == "SIGN_VERIFY" for k in resources.keys
    )
    assert any(b.versioned for b in resources.buckets)  # the backup bucket
    # The SMTP URL secret: GenerateSecretString {} (its custom resource writes the value).
    # The PDS secret: neither it nor a SecretString, an empty secret its keys resource fills.
    by_id = {s.logical_id: s for s in resources.secrets}
    assert sorted(s.generate is None for s in resources.secrets) == [False, True]
    (keys,) = resources.secret_keys
    assert by_id[keys.secret_logical_id].generate is None
    assert set(keys.properties) == {"Keys"}


def test_local_bucket_names_are_valid() -> None:
    name = local_bucket_name("BlueskyPds", "StorageBlobBucket01221242_" + "X" * 60)
    assert len(name) <= 63
    assert name == name.lower()
    assert not name.endswith("-")


def test_image_and_log_settings_are_not_needed_locally() -> None:
    ecr_image = {
        "Fn::Join": [
            "",
            [
                {"Fn::Select": [4, {"Fn::Split": [":", {"Fn::GetAtt": ["Repo", "Arn"]}]}]},
                ".dkr.ecr.",
                {"Fn::GetAtt": ["Build", "ImageTag"]},
            ],
        ]
    }
    template = _template_with(
        _container("pds", Image=ecr_image, LogConfiguration={"Options": {"Fn::If": []}}),
        Repo={"Type": "AWS::ECR::Repository"},
        Build={"Type": "Custom::Build"},
    )
    assert read_task_definition(template, EMPTY_AWS).containers["pds"].name == "pds"
    arn = resolve({"Fn::GetAtt": ["Repo", "Arn"]}, template, EMPTY_AWS)
    assert resolve({"Fn::Select": [4, {"Fn::Split": [":", arn]}]}, template, EMPTY_AWS)


def test_backup_sidecar_waits_for_the_local_pds(template: dict[str, Any]) -> None:
    """The task's containers share localhost: the sidecar's PDS health URL (the PDS's
    container port) becomes the port the local PDS listens on."""
    task = read_task_definition(template, local_aws_for(template))
    backup = task.containers["backup"]
    assert backup.environment["PDS_HEALTH_URL"] == "http://127.0.0.1:3000/xrpc/_health"
    env = container_environment(
        backup,
        secret_values={},
        endpoints=ENDPOINTS,
        task_ports=taskdef.task_local_ports(task, ENDPOINTS),
    )
    assert env["PDS_HEALTH_URL"] == "http://127.0.0.1:4005/xrpc/_health"
    assert env["BACKUP_URL"] == backup.environment["BACKUP_URL"]
