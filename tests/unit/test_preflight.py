"""`make deploy`'s CodeBuild preflight (issue 9, defect 8).

moto has CodeBuild, but its CreateProject demands a source location even for NO_SOURCE
(moto/codebuild/responses.py, _validate_required_params_source), which AWS does not (the
CodeBuild API Reference, ProjectSource: NO_SOURCE takes its buildspec inline), and it cannot
make an account whose build limit is 0. So these tests use botocore's Stubber, which checks
every call and response against the real CodeBuild and IAM API models, for the three answers
AWS gives: a build that succeeds, StartBuild's AccountLimitExceededException, and a build that
fails in its QUEUED phase with "Cannot have more than 0 builds in queue for the account".
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from pds_aws.infra.preflight import (
    BuildEnvironment,
    CodeBuildCheck,
    PreflightError,
    build_environments,
    plan,
)

REGION = "us-east-2"
ARM_SMALL = BuildEnvironment(
    "ARM_CONTAINER", "BUILD_GENERAL1_SMALL", "aws/codebuild/amazonlinux2-aarch64-standard:3.0"
)
ROLE_ARN = "arn:aws:iam::123456789012:role/pds-aws-preflight-test"


def _template(*environments: BuildEnvironment) -> dict[str, Any]:
    resources: dict[str, Any] = {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}}}
    for index, env in enumerate(environments):
        resources[f"Project{index}"] = {
            "Type": "AWS::CodeBuild::Project",
            "Properties": {
                "Environment": {
                    "Type": env.type,
                    "ComputeType": env.compute_type,
                    "Image": env.image,
                    "PrivilegedMode": True,
                }
            },
        }
    return {"Resources": resources}


def test_the_build_environments_are_those_of_the_template_s_projects() -> None:
    x86 = BuildEnvironment("LINUX_CONTAINER", "BUILD_GENERAL1_SMALL", "standard:5.0")
    assert build_environments(_template(ARM_SMALL, x86, ARM_SMALL)) == [ARM_SMALL, x86]
    assert build_environments(_template()) == []


def test_plan_names_every_call_and_cleans_up() -> None:
    steps = [f"{s.service}:{s.operation}" for s in plan([ARM_SMALL], "pf")]
    assert steps == [
        "iam:CreateRole",
        "codebuild:CreateProject",
        "codebuild:StartBuild",
        "codebuild:BatchGetBuilds",
        "codebuild:DeleteProject",
        "iam:DeleteRole",
    ]


def _stubbed(start_build: dict[str, Any] | None, ended_build: dict[str, Any] | None) -> Any:
    iam = boto3.client("iam", region_name=REGION)
    codebuild = boto3.client("codebuild", region_name=REGION)
    iam_stub, cb_stub = Stubber(iam), Stubber(codebuild)
    iam_stub.add_response(
        "create_role",
        {
            "Role": {
                "Path": "/",
                "RoleName": "pf",
                "RoleId": "AROAEXAMPLEEXAMPLE000",
                "Arn": ROLE_ARN,
                "CreateDate": "2026-11-30T00:00:00Z",
            }
        },
    )
    cb_stub.add_response("create_project", {"project": {"name": "pf-0"}})
    if start_build is None:
        cb_stub.add_client_error(
            "start_build",
            service_error_code="AccountLimitExceededException",
            service_message="Cannot have more than 0 builds in queue for the account",
        )
    else:
        assert ended_build is not None
        cb_stub.add_response("start_build", start_build)
        cb_stub.add_response(
            "batch_get_builds", {"builds": [{**ended_build, "buildStatus": "IN_PROGRESS"}]}
        )
        cb_stub.add_response("batch_get_builds", {"builds": [ended_build]})
    cb_stub.add_response("delete_project", {})
    iam_stub.add_response("delete_role", {})
    iam_stub.activate()
    cb_stub.activate()
    check = CodeBuildCheck(iam=iam, codebuild=codebuild, name="pf", sleep=lambda _s: None)
    return check, (iam_stub, cb_stub)


def test_a_noop_build_that_succeeds_lets_the_deploy_go_on_and_cleans_up() -> None:
    build_id = "pf-0:0001"
    check, stubs = _stubbed(
        start_build={"build": {"id": build_id, "buildStatus": "IN_PROGRESS"}},
        ended_build={"id": build_id, "buildStatus": "SUCCEEDED"},
    )
    check.run([ARM_SMALL])
    for stub in stubs:
        stub.assert_no_pending_responses()  # polled until done, project and role deleted


def test_a_refused_build_stops_the_deploy_with_the_quota_fix() -> None:
    check, stubs = _stubbed(start_build=None, ended_build=None)
    with pytest.raises(PreflightError) as raised:
        check.run([ARM_SMALL])
    message = str(raised.value)
    assert "Cannot have more than 0 builds" in message
    assert "Service Quotas" in message and "Concurrently running builds" in message
    assert "ARM_CONTAINER / BUILD_GENERAL1_SMALL" in message
    for stub in stubs:
        stub.assert_no_pending_responses()  # the project and the role were deleted


def test_a_build_failing_in_the_queue_stops_the_deploy_too() -> None:
    build_id = "pf-0:0000"
    failed = {
        "id": build_id,
        "buildStatus": "FAILED",
        "phases": [
            {"phaseType": "SUBMITTED", "phaseStatus": "SUCCEEDED"},
            {
                "phaseType": "QUEUED",
                "phaseStatus": "FAILED",
                "contexts": [
                    {
                        "statusCode": "ACCOUNT_LIMIT_EXCEEDED",
                        "message": "Cannot have more than 0 builds in queue for the account",
                    }
                ],
            },
        ],
    }
    check, stubs = _stubbed(
        start_build={"build": {"id": build_id, "buildStatus": "IN_PROGRESS"}}, ended_build=failed
    )
    with pytest.raises(PreflightError, match="ended FAILED: Cannot have more than 0 builds"):
        check.run([ARM_SMALL])
    for stub in stubs:
        stub.assert_no_pending_responses()
