"""`[pipeline]` on: `make synth` gives the delivery pipeline (CDK Pipelines) with its stages.

Source -> Build (unit + template tests with cdk-nag, then synth) -> UpdatePipeline (self-mutation)
-> Assets -> Test (test-mode stack, smoke, teardown) -> Approve (manual) -> Production (upgrade:
drill first, deploy, smoke). The app is synthesized once, with cdk-nag's AwsSolutions and NIST
800-53 R5 plugins on (they only validate; the templates are the same), in prod mode.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App

from helpers import add_nag_packs, assert_nag_packs_ran_with_reasons, nag_report
from pds_aws.config import Config
from pds_aws.infra.preflight import build_environments, deployed_codebuild_template
from pds_aws.infra.synth import CDK_CONTEXT, add_app_stacks
from pds_aws.names import IMAGE_TAG_LABEL, PDS_CONTAINER
from pds_aws.pipeline.stack import PipelineStack, pipeline_stack_name
from pds_aws.pipeline.stage_configs import production_steps_role_arn

CONNECTION = (
    "arn:aws:codestar-connections:us-east-2:123456789012:connection/"
    "1234abcd-12ab-34cd-56ef-1234567890ab"
)
PIPELINE = {
    "enabled": True,
    "connection_arn": CONNECTION,
    "repository": "alice/pds-aws",
    "branch": "release",
    "config_file": "deploy/pds.toml",
    "test_domain": "pds-test.example.com",
}
PROJECT_ROOT = Path(__file__).resolve().parents[2]
ConfigFactory = Callable[..., Config]


@dataclass
class PipelineApp:
    config: Config
    report: dict[str, Any]
    error: str = ""
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def pipeline(self) -> dict[str, Any]:
        if self.error:
            pytest.fail(f"the pipeline app did not synthesize: {self.error}")
        return self.templates[pipeline_stack_name(self.config)]

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.pipeline["Resources"].items() if r["Type"] == kind}

    def stages(self) -> list[dict[str, Any]]:
        (pipeline,) = self.resources("AWS::CodePipeline::Pipeline").values()
        return list(pipeline["Properties"]["Stages"])

    def stage(self, name: str) -> dict[str, Any]:
        return next(s for s in self.stages() if s["Name"] == name)

    def project(self, logical_id_part: str) -> dict[str, Any]:
        (found,) = [
            r["Properties"]
            for k, r in self.resources("AWS::CodeBuild::Project").items()
            if logical_id_part in k
        ]
        return found

    def buildspec(self, logical_id_part: str) -> dict[str, Any]:
        return dict(json.loads(self.project(logical_id_part)["Source"]["BuildSpec"]))


@pytest.fixture(scope="session")
def pipeline_app(
    config_factory: ConfigFactory, tmp_path_factory: pytest.TempPathFactory
) -> PipelineApp:
    config = config_factory(aws={"mode": "prod"}, pipeline=PIPELINE)
    outdir = tmp_path_factory.mktemp("pipeline")
    app = App(context=dict(CDK_CONTEXT), outdir=str(outdir))
    stack = add_app_stacks(app, config)
    assert isinstance(stack, PipelineStack)
    add_nag_packs(app)
    try:
        assembly = app.synth()
    except Exception as exc:  # ValidationFailed: the report says what
        return PipelineApp(config, nag_report(outdir), error=f"{exc.__class__.__name__}: {exc}")
    report = nag_report(outdir)
    templates = {stack.stack_name: assembly.get_stack_by_name(stack.stack_name).template}
    for stage in (stack.test_stage, stack.production_stage):
        for artifact in assembly.get_nested_assembly(stage.artifact_id).stacks:
            templates[artifact.stack_name] = artifact.template
    return PipelineApp(config, report, templates=templates)


def test_cdk_nag_ran_over_the_pipeline_app_and_found_nothing_unacknowledged(
    pipeline_app: PipelineApp,
) -> None:
    findings = [
        f"{v['ruleName']} at {c['constructPath']}"
        for plugin in pipeline_app.report["pluginReports"]
        for v in plugin["violations"]
        for c in v["violatingConstructs"]
    ]
    assert not pipeline_app.error and not findings, "\n".join(findings or [pipeline_app.error])
    assert_nag_packs_ran_with_reasons(pipeline_app.report)
    plugins = {p["pluginName"]: p for p in pipeline_app.report["pluginReports"]}
    assert all(p["conclusion"] == "success" for p in plugins.values())
    # The plugins saw both stages' stacks (the report lists the acknowledgments applied
    # there); every acknowledgment carries a reason.
    suppressed = [s for p in plugins.values() for s in p["suppressedViolations"]]
    paths = {c["constructPath"] for s in suppressed for c in s["violatingConstructs"]}
    for part in ("/Test/BlueskyPds-Test/", "/Production/BlueskyPds/"):
        assert any(part in path for path in paths), part
    assert all(len(s["reason"]) > 20 for s in suppressed)


def test_stages_in_order(pipeline_app: PipelineApp) -> None:
    assert [s["Name"] for s in pipeline_app.stages()] == [
        "Source",
        "Build",
        "UpdatePipeline",
        "Assets",
        "Test",
        "Approve",
        "Production",
    ]


def test_the_source_is_the_users_github_repository_through_the_connection(
    pipeline_app: PipelineApp,
) -> None:
    """CodePipeline's CodeStarSourceConnection action takes ConnectionArn, FullRepositoryId
    (owner/name) and BranchName (AWS CodePipeline User Guide, "CodeStarSourceConnection for
    Bitbucket Cloud, GitHub, ..." action reference); the connection's ARN has the form
    arn:aws:codestar-connections:REGION:ACCOUNT:connection/ID (AWS SDK reference,
    RepositoryAssociation.connectionArn). Connections are made and authorized in the console,
    which no test here can do: the template must carry exactly the configured values."""
    (action,) = pipeline_app.stage("Source")["Actions"]
    assert action["ActionTypeId"] == {
        "Category": "Source",
        "Owner": "AWS",
        "Provider": "CodeStarSourceConnection",
        "Version": "1",
    }
    assert action["Configuration"]["ConnectionArn"] == CONNECTION
    assert action["Configuration"]["FullRepositoryId"] == "alice/pds-aws"
    assert action["Configuration"]["BranchName"] == "release"
    # The pipeline may use that connection, and only it.
    policies = json.dumps(pipeline_app.resources("AWS::IAM::Policy"))
    assert '"codestar-connections:UseConnection"' in policies and CONNECTION in policies


def test_pipeline_type_v2(pipeline_app: PipelineApp) -> None:
    """V2 pipelines are billed per action-execution minute ($0.002; manual approvals are not
    charged; 100 free minutes a month), V1 pipelines $1.00 per active pipeline-month
    (https://aws.amazon.com/codepipeline/pricing/). A PDS pipeline runs a few times a month, so
    V2 costs less; the type must be explicit ("Pipelines are automatically designated as V1
    ... even if the pipeline type is not specified", same page)."""
    (pipeline,) = pipeline_app.resources("AWS::CodePipeline::Pipeline").values()
    assert pipeline["Properties"]["PipelineType"] == "V2"
    assert pipeline["Properties"]["Name"] == "BlueskyPds"


def test_build_runs_the_unit_and_template_tests_with_cdk_nag_then_synth(
    pipeline_app: PipelineApp,
) -> None:
    spec = pipeline_app.buildspec("Synth")
    assert spec["phases"]["install"]["commands"] == ["make install"]
    assert spec["phases"]["build"]["commands"] == [
        ".venv/bin/pytest -q tests/unit tests/template",
        "make synth CONFIG=deploy/pds.toml",
    ]
    assert spec["artifacts"]["base-directory"] == "cdk.out"
    # tests/template holds the cdk-nag runs (both packs) over the stack and over this pipeline.
    nag_tests = [PROJECT_ROOT / "tests/template/test_stack_compliance.py", Path(__file__)]
    assert all("add_nag_packs(app)" in p.read_text(encoding="utf-8") for p in nag_tests)
    helpers = (PROJECT_ROOT / "tests/helpers.py").read_text(encoding="utf-8")
    assert "AwsSolutionsChecks(app), NIST80053R5Checks(app)" in helpers


def test_self_mutation_deploys_the_pipeline_stack_with_the_pinned_cdk_cli(
    pipeline_app: PipelineApp,
) -> None:
    """CDK Pipelines' self-mutation (aws/aws-cdk, packages/aws-cdk-lib/pipelines/lib/codepipeline/
    codepipeline.ts, selfMutateAction) runs `npm install -g aws-cdk<@cliVersion>` and `cdk -a
    <assembly> deploy <pipeline stack> --require-approval=never` in CodeBuild, so a commit that
    changes the pipeline runs on the changed pipeline. It cannot run here: the buildspec must
    name this pipeline stack and the CLI version pinned beside aws-cdk-lib."""
    from pds_aws.versions import CDK_CLI_VERSION

    spec = pipeline_app.buildspec("SelfMutation")
    assert spec["phases"]["install"]["commands"] == [f"npm install -g aws-cdk@{CDK_CLI_VERSION}"]
    assert spec["phases"]["build"]["commands"] == [
        "cdk -a . deploy BlueskyPds-Pipeline --require-approval=never --verbose"
    ]


def _run_orders(stage: dict[str, Any]) -> dict[str, int]:
    return {a["Name"]: a["RunOrder"] for a in stage["Actions"]}


def test_test_stage_deploys_the_test_stack_smokes_it_then_deletes_it(
    pipeline_app: PipelineApp,
) -> None:
    order = _run_orders(pipeline_app.stage("Test"))
    assert (
        order["BlueskyPds-Test.Prepare"]
        < order["BlueskyPds-Test.Deploy"]
        < order["SmokeTest"]
        < order["DeleteTestStack"]
    )
    smoke = pipeline_app.buildspec("SmokeTest")["phases"]
    assert smoke["install"]["commands"] == ["make install-python"]
    assert smoke["build"]["commands"] == [".venv/bin/pds-aws smoke https://pds-test.example.com"]
    assert pipeline_app.buildspec("DeleteTestStack")["phases"]["build"]["commands"] == [
        "aws cloudformation delete-stack --stack-name BlueskyPds-Test --region us-east-2",
        "aws cloudformation wait stack-delete-complete --stack-name BlueskyPds-Test "
        "--region us-east-2",
    ]


def test_test_stack_has_its_own_domain_ses_identity_and_names_in_test_mode(
    pipeline_app: PipelineApp,
) -> None:
    test = pipeline_app.templates["BlueskyPds-Test"]
    text = json.dumps(test)
    identities = [
        r["Properties"]["EmailIdentity"]
        for r in test["Resources"].values()
        if r["Type"] == "AWS::SES::EmailIdentity"
    ]
    assert identities == ["pds-test.example.com"]
    assert '"pds.example.com"' not in text and "https://pds.example.com" not in text
    # Test mode: nothing is retained when the teardown deletes it.
    policies = {r.get("DeletionPolicy", "Delete") for r in test["Resources"].values()}
    assert "Retain" not in policies
    production = pipeline_app.templates["BlueskyPds"]
    assert "Retain" in {r.get("DeletionPolicy") for r in production["Resources"].values()}


def test_manual_approval_between_the_test_and_production_stages(
    pipeline_app: PipelineApp,
) -> None:
    names = [s["Name"] for s in pipeline_app.stages()]
    assert names.index("Test") < names.index("Approve") < names.index("Production")
    (action,) = pipeline_app.stage("Approve")["Actions"]
    assert action["ActionTypeId"]["Category"] == "Approval"
    assert action["ActionTypeId"]["Provider"] == "Manual"
    assert "https://pds-test.example.com" in action["Configuration"]["CustomData"]


def test_production_upgrades_with_a_drill_first_then_deploys_then_smokes(
    pipeline_app: PipelineApp,
) -> None:
    order = _run_orders(pipeline_app.stage("Production"))
    assert (order["Upgrade"] < order["BlueskyPds.Prepare"] < order["BlueskyPds.Deploy"]) and order[
        "BlueskyPds.Deploy"
    ] < order["SmokeProduction"]
    upgrade = pipeline_app.buildspec("Upgrade")["phases"]
    assert upgrade["build"]["commands"] == [
        ".venv/bin/pds-aws upgrade --to 0.4.5026 -c deploy/pds.toml --drill-if-current"
    ]
    assert "--yes" not in upgrade["build"]["commands"][0]  # a restore that drops writes waits
    assert pipeline_app.project("Upgrade")["TimeoutInMinutes"] == 120
    assert pipeline_app.buildspec("SmokeProduction")["phases"]["build"]["commands"] == [
        ".venv/bin/pds-aws smoke https://pds.example.com -c deploy/pds.toml"
    ]


def test_production_steps_run_as_the_role_the_backup_bucket_admits(
    pipeline_app: PipelineApp,
) -> None:
    """S3 evaluates an explicit deny before any allow (IAM User Guide, "Policy evaluation
    logic"): the production stack's backup bucket denies object reads to every principal but
    the listed role ARNs, and in prod to any request not through the VPC endpoint. CodeBuild
    runs outside the VPC, so the upgrade step's role must be listed in both denies' exceptions,
    by a fixed name the production stack knows without a cross-stack reference."""
    role_arn = production_steps_role_arn(pipeline_app.config)
    assert role_arn == "arn:aws:iam::123456789012:role/BlueskyPds-pipeline-operator"
    roles = pipeline_app.resources("AWS::IAM::Role")
    (logical_id,) = [
        k
        for k, r in roles.items()
        if r["Properties"].get("RoleName") == "BlueskyPds-pipeline-operator"
    ]
    for step in ("Upgrade", "SmokeProduction"):
        assert pipeline_app.project(step)["ServiceRole"] == {"Fn::GetAtt": [logical_id, "Arn"]}
    production = pipeline_app.templates["BlueskyPds"]
    denies = [
        statement
        for r in production["Resources"].values()
        if r["Type"] == "AWS::S3::BucketPolicy"
        for statement in r["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Sid") in ("OnlyThePdsRolesReadBackups", "OnlyThroughVpcEndpoint")
        and "ArnNotEquals" in statement.get("Condition", {})
    ]
    assert {s["Sid"] for s in denies} == {"OnlyThePdsRolesReadBackups", "OnlyThroughVpcEndpoint"}
    for statement in denies:
        assert role_arn in json.dumps(statement["Condition"]["ArnNotEquals"])


def test_production_stack_labels_the_image_tag_it_deploys(pipeline_app: PipelineApp) -> None:
    """`pds-aws upgrade --drill-if-current` compares the committed tag with the label on the
    running task definition's `pds` container: the stack must set it."""
    production = pipeline_app.templates["BlueskyPds"]
    labels = [
        container.get("DockerLabels", {})
        for r in production["Resources"].values()
        if r["Type"] == "AWS::ECS::TaskDefinition"
        for container in r["Properties"]["ContainerDefinitions"]
        if container["Name"] == PDS_CONTAINER
    ]
    assert [label[IMAGE_TAG_LABEL] for label in labels] == ["0.4.5026"]


def test_every_step_runs_on_codebuild_and_the_preflight_checks_its_environment(
    pipeline_app: PipelineApp,
) -> None:
    """New accounts often have a CodeBuild concurrent-build quota of 0 (the deploy's preflight,
    pds_aws.infra.preflight): every pipeline step is a CodeBuild project, so the preflight must
    see all of them."""
    projects = pipeline_app.resources("AWS::CodeBuild::Project")
    described = " ".join(str(p["Properties"].get("Description", "")) for p in projects.values())
    for step in ("Synth", "SelfMutate", "FileAsset", "SmokeTest", "DeleteTestStack", "Upgrade"):
        assert step in described or any(step in k for k in projects), step
    assert [
        (e.type, e.compute_type, e.image) for e in build_environments(pipeline_app.pipeline)
    ] == [("LINUX_CONTAINER", "BUILD_GENERAL1_SMALL", "aws/codebuild/standard:7.0")]


def test_s3_source_direct_edge_teardown_and_preflight(config_factory: ConfigFactory) -> None:
    """The S3 source action reads S3Bucket/S3ObjectKey (CodePipeline action reference, "Amazon
    S3 source action"; the bucket must be versioned, which the operator sets up). With the
    direct edge the test stage has a second stack in us-east-1, and the teardown deletes both."""
    config = config_factory(
        edge={"kind": "direct"},
        pipeline={
            "enabled": True,
            "source_bucket": "alice-pds-source",
            "source_key": "pds-aws/source.zip",
            "test_domain": "pds-test.example.com",
            "test_stack_name": "PdsStaging",
        },
    )
    # What the deploy's preflight reads: every stack's resources, as `stack/logical id`.
    resources = deployed_codebuild_template(config)["Resources"]
    stacks = {key.split("/", 1)[0] for key in resources}
    assert stacks == {
        "BlueskyPds-Pipeline",
        "PdsStaging",
        "PdsStaging-Health",
        "BlueskyPds",
        "BlueskyPds-Health",
    }
    # The preflight checks the pipeline steps' environment and the stages' image builds.
    kinds = {(e.type, e.image) for e in build_environments({"Resources": resources})}
    assert ("LINUX_CONTAINER", "aws/codebuild/standard:7.0") in kinds and len(kinds) > 1
    pipeline = {
        "Resources": {
            key.split("/", 1)[1]: r
            for key, r in resources.items()
            if key.startswith("BlueskyPds-Pipeline/")
        }
    }
    (stages,) = [
        r["Properties"]["Stages"]
        for r in pipeline["Resources"].values()
        if r["Type"] == "AWS::CodePipeline::Pipeline"
    ]
    (source,) = stages[0]["Actions"]
    assert source["ActionTypeId"]["Provider"] == "S3"
    assert source["Configuration"]["S3Bucket"] == "alice-pds-source"
    assert source["Configuration"]["S3ObjectKey"] == "pds-aws/source.zip"
    (teardown,) = [
        json.loads(r["Properties"]["Source"]["BuildSpec"])
        for k, r in pipeline["Resources"].items()
        if r["Type"] == "AWS::CodeBuild::Project" and "DeleteTestStack" in k
    ]
    commands = teardown["phases"]["build"]["commands"]
    assert "aws cloudformation delete-stack --stack-name PdsStaging --region us-east-2" in commands
    assert any("--region us-east-1" in c and "delete-stack" in c for c in commands)


def test_cost_prices_the_pipeline_per_month_and_per_run(pipeline_app: PipelineApp) -> None:
    """`pds-aws cost` with [pipeline] on (cost.pipeline_estimate over these templates)."""
    from pds_aws.cost.measured import backup_idle_rate
    from pds_aws.cost.pipeline import STEP_MINUTES
    from pds_aws.cost.pipeline_estimate import estimate_pipeline_templates

    config = pipeline_app.config
    pipeline_app.pipeline  # noqa: B018 - fails with the synth error if there was one
    est = estimate_pipeline_templates(
        config, pipeline_app.templates, backup_idle_rate(config.cost, None)
    )
    assert not est.unpriced
    lines = {line.resource: line for line in est.lines}
    runs = config.cost.pipeline_runs_per_month
    assert runs == 4
    # Each CodeBuild step: its estimated minutes a run x 4 runs.
    steps = ("Synth", "SelfMutate", "FileAssets", "SmokeTest", "DeleteTestStack", "Upgrade")
    for step in (*steps, "SmokeProduction"):
        assert lines[f"Pipeline: CodeBuild step {step}"].quantity == STEP_MINUTES[step] * runs
    # Action minutes a run: source 1, Synth 15, SelfMutate 3, FileAssets 3; Test: prepare 1,
    # deploy 25, smoke 2, teardown 10; the approval 0; Production: upgrade 20, prepare 1,
    # deploy 15, smoke 2 = 98.
    v2 = lines["Pipeline: CodePipeline V2 action minutes (98 a run, 4 runs)"]
    assert v2.quantity == 98 * 4 and v2.unit_price == 0.002
    # The test stack for an hour a run (its load balancer: 4 ALB-hours), its images built
    # each run; production is priced as always (a month of its task).
    test_alb = next(r for r in lines if r.startswith("Pipeline: test stage Application Load"))
    assert lines[test_alb].quantity == 4
    assert any(r.startswith("Pipeline: test stage CodeBuild image builds") for r in lines)
    assert lines["ECS service PdsService: Fargate memory (1 GB, arm64, on-demand)"].quantity == 730
    assert not any("hosted zone" in r for r in lines if r.startswith("Pipeline:"))
    # One run, by hand from the lines (before free allowances), in the table and the JSON.
    by_hand = sum(
        line.quantity * line.unit_price for r, line in lines.items() if r.startswith("Pipeline:")
    )
    assert est.pipeline_run_usd == pytest.approx(by_hand / runs)
    assert 0.5 < by_hand / runs < 5
    assert est.to_json()["pipeline_run"] == round(by_hand / runs, 2)
    from pds_aws.cost.table import render_table

    assert f"Pipeline run:     ${by_hand / runs:,.2f} each" in render_table(est)
