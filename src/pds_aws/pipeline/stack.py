"""The delivery pipeline: CDK Pipelines (`aws_cdk.pipelines.CodePipeline`) over the PDS stack.

Stages, in order (guides/DEPLOY.md, "Delivery pipeline"):

1. Source: the user's repository, through a CodeStar connection to GitHub or a zip in S3.
2. Build: the unit and template tests (cdk-nag among them), then `cdk synth` (steps.synth_step).
3. UpdatePipeline: CDK Pipelines' self-mutation, so a commit that changes the pipeline runs the
   new pipeline; Assets: the file assets published to the bootstrap bucket.
4. Test: the test-mode stack (its own domain, SES identity, stack name), `pds-aws smoke` against
   it, then the stack is deleted again.
5. Approve: a manual approval.
6. Production: `pds-aws upgrade` to the committed image tag (drill first), the stack's deploy,
   then `pds-aws smoke`.

CDK Pipelines is used as it is: a plain `aws_codepipeline.Pipeline` would need the synth,
self-mutation, asset publishing and CloudFormation actions written by hand for the same result.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack, Stage, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from pds_aws.config import Config
from pds_aws.infra.storage import private_bucket
from pds_aws.pipeline import steps
from pds_aws.pipeline.compliance import acknowledge_pipeline_findings
from pds_aws.pipeline.roles import ProductionStepsRole, teardown_statements
from pds_aws.pipeline.stage_configs import config_of_test_stage
from pds_aws.versions import CDK_CLI_VERSION

TEST_STAGE = "Test"
APPROVAL_STAGE = "Approve"
PRODUCTION_STAGE = "Production"
APPROVAL_STEP = "PromoteToProduction"
# Artifacts of old runs are never read again; a month covers any investigation.
ARTIFACT_DAYS = 30
# CodeBuild's standard Linux image (Ubuntu, Python 3.12, make, git, Node): `make install` needs
# nothing else. The small general-purpose machine is the one the free tier covers.
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0
COMPUTE_TYPE = codebuild.ComputeType.SMALL
# Upgrades wait for ECS (up to 30 min per rollout, twice on a rollback) and a drill.
UPGRADE_TIMEOUT = Duration.minutes(120)


def pipeline_stack_name(config: Config) -> str:
    return f"{config.aws.stack_name}-Pipeline"


class PdsStage(Stage):
    """One deployment of the PDS: the stack (and, direct edge, its us-east-1 stack)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config, **kwargs: Any):
        super().__init__(scope, construct_id, **kwargs)
        from pds_aws.infra.synth import add_stack

        self.stack = add_stack(self, config)


def _source(config: Config, scope: Construct) -> pipelines.CodePipelineSource:
    settings = config.pipeline
    if settings.uses_github:
        return pipelines.CodePipelineSource.connection(
            settings.repository, settings.branch, connection_arn=settings.connection_arn
        )
    bucket = s3.Bucket.from_bucket_name(scope, "SourceBucket", settings.source_bucket)
    return pipelines.CodePipelineSource.s3(bucket, settings.source_key)


def _code_build_step(
    step: steps.Step, source: pipelines.CodePipelineSource, **kwargs: Any
) -> pipelines.CodeBuildStep:
    return pipelines.CodeBuildStep(
        step.name,
        input=source,
        install_commands=list(step.install),
        commands=list(step.commands),
        **kwargs,
    )


def _default_policy(role: iam.IRole | None) -> iam.Policy:
    policy = role.node.try_find_child("DefaultPolicy") if role is not None else None
    assert isinstance(policy, iam.Policy)
    return policy


class PipelineStack(Stack):
    """The pipeline, in the config's account and region; `make deploy` deploys it once, then
    every push deploys through it (the pipeline updates itself first)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: Config, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        source = _source(config, self)
        synth = steps.synth_step(config)
        self.artifact_bucket = private_bucket(
            self,
            "Artifacts",
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(ARTIFACT_DAYS),
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal=RemovalPolicy.RETAIN,
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=config.aws.stack_name,
            pipeline_type=codepipeline.PipelineType.V2,
            artifact_bucket=self.artifact_bucket,
            cross_account_keys=False,
            self_mutation=True,
            cli_version=CDK_CLI_VERSION,
            publish_assets_in_parallel=False,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(
                    build_image=BUILD_IMAGE, compute_type=COMPUTE_TYPE
                ),
            ),
            synth=pipelines.CodeBuildStep(
                synth.name,
                input=source,
                install_commands=list(synth.install),
                commands=list(synth.commands),
                primary_output_directory=steps.ASSEMBLY_DIRECTORY,
            ),
        )

        test_config = config_of_test_stage(config)
        self.test_stage = PdsStage(self, TEST_STAGE, config=test_config, env=self._env(config))
        test_smoke = _code_build_step(steps.test_smoke_step(config), source)
        teardown = _code_build_step(
            steps.test_teardown_step(config),
            source,
            role_policy_statements=teardown_statements(self, test_config),
        )
        # The test stack is deleted after its smoke test, whatever the result was not: a
        # failed smoke stops the pipeline and leaves the stack for inspection.
        teardown.add_step_dependency(test_smoke)
        self.pipeline.add_stage(self.test_stage, post=[test_smoke, teardown])
        self.pipeline.add_wave(
            APPROVAL_STAGE,
            pre=[
                pipelines.ManualApprovalStep(
                    APPROVAL_STEP,
                    comment=f"The test stack at https://{test_config.pds.domain} passed "
                    f"`pds-aws smoke`. Approve to upgrade https://{config.pds.domain}.",
                )
            ],
        )
        self.production_role = ProductionStepsRole(self, "ProductionSteps", config=config)
        self.production_stage = PdsStage(
            self, PRODUCTION_STAGE, config=config, env=self._env(config)
        )
        self.pipeline.add_stage(
            self.production_stage,
            pre=[
                _code_build_step(
                    steps.upgrade_step(config),
                    source,
                    role=self.production_role.role,
                    timeout=UPGRADE_TIMEOUT,
                )
            ],
            post=[
                _code_build_step(
                    steps.prod_smoke_step(config), source, role=self.production_role.role
                )
            ],
        )
        self.pipeline.build_pipeline()
        acknowledge_pipeline_findings(
            self,
            operator_policies=[_default_policy(self.production_role.role)],
            teardown_policies=[_default_policy(teardown.project.role)],
        )

    @staticmethod
    def _env(config: Config) -> Any:
        from aws_cdk import Environment

        return Environment(account=config.aws.account, region=config.aws.region)


def add_pipeline(scope: Construct, config: Config) -> PipelineStack:
    from aws_cdk import Environment

    return PipelineStack(
        scope,
        pipeline_stack_name(config),
        config=config,
        env=Environment(account=config.aws.account, region=config.aws.region),
        description=f"Delivery pipeline of the Bluesky PDS at {config.pds.domain} (pds-aws)",
    )


def synthesize_pipeline(config: Config, *, outdir: str) -> dict[str, dict[str, Any]]:
    """Every template `[pipeline]` deploys, by stack name: the pipeline stack first, then the
    test stage's and the production stage's stacks (what the preflight and the cost read)."""
    from aws_cdk import App

    from pds_aws.infra.synth import CDK_CONTEXT

    app = App(context=dict(CDK_CONTEXT), outdir=outdir)
    stack = add_pipeline(app, config)
    assembly = app.synth()
    templates = {stack.stack_name: assembly.get_stack_by_name(stack.stack_name).template}
    for stage in (stack.test_stage, stack.production_stage):
        nested = assembly.get_nested_assembly(stage.artifact_id)
        for artifact in nested.stacks:
            templates[artifact.stack_name] = artifact.template
    return templates
