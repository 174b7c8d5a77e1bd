"""The backup sidecar on AWS: the `backup` container of the PDS task and the restore drill.

`BackupSidecar` adds to the stack's task definition the container that restores the data
directory before the PDS starts and replicates it afterwards (`pds-aws-backup run`), and
beside it a weekly restore drill: a one-off Fargate task (`pds-aws-backup drill`) started by
an EventBridge schedule, with an alarm when it fails. The image of both is built at deploy
time by CodeBuild (deploy-time-build), so deploying needs no local Docker.

The stack composes it and does the wiring that involves other components: the PDS
container's HEALTHY dependency on `.container` and the SNS action of `.drill_failed_alarm`
and of an alarm on `.error_metric`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Duration, IgnoreMode, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct, IConstruct
from deploy_time_build import ContainerImageBuild

from pds_aws.config import Architecture, Config
from pds_aws.infra.compliance import acknowledge, nag_text, wildcard_findings
from pds_aws.infra.images import docker_platform, image_repository
from pds_aws.infra.monitoring import line_count_metric, log_group
from pds_aws.infra.service import PdsTask, mount
from pds_aws.names import (
    BACKUP_CONTAINER,
    BACKUP_PREFIX,
    DATA_DIRECTORY,
    DRILL_CONTAINER,
    PDS_HEALTH_URL,
)

# The repository root is the image's build context; /.dockerignore keeps it to our package.
PROJECT_ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = "src/pds_aws/backup/Dockerfile"  # relative to PROJECT_ROOT
DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"

DRILL_SCRATCH_VOLUME = "drill-scratch"
DRILL_SCRATCH_DIRECTORY = "/scratch"

# ECS allows a start period of at most 300 s. A container still restoring after it is not
# failed until `retries` more checks fail: 300 + 10 x 30 s = 10 minutes for the restore and
# the upload of the new generation (1,000 small accounts took ~7 min on a loaded 2-core
# machine against moto, BENCHMARKS.md). An unhealthy sidecar gets the task replaced, which
# restarts the restore: the window must exceed the slowest start. The price: the PDS may
# start up to one interval after the restore is done.
HEALTH_CHECK_INTERVAL = Duration.seconds(30)
HEALTH_CHECK_TIMEOUT = Duration.seconds(10)
HEALTH_CHECK_RETRIES = 10
HEALTH_CHECK_START_PERIOD = Duration.seconds(300)
# Fargate's maximum: the final sync on SIGTERM must fit inside it.
STOP_TIMEOUT = Duration.seconds(120)

# The sidecar marks every failure line with "ERROR" (its own lines: "ERROR backup: ...";
# Litestream's: "level=ERROR"): one count for the stack's "backup errors" alarm.
ERROR_FILTER_PATTERN = logs.FilterPattern.any_term("ERROR")

# Reasons shared by several cdk-nag acknowledgments of this construct.
_PREFIX_REASON = (
    f"Backup objects are only those under the '{BACKUP_PREFIX}/' prefix of the backup "
    "bucket; every database and key file of the PDS is one object there, named at runtime."
)
_INLINE_REASON = (
    "CDK grants write one policy attached to this role only; a managed policy could be "
    "attached elsewhere and would not be narrower."
)
_ECR_REASON = (
    "ecr:GetAuthorizationToken, needed to pull the backup image from its ECR repository, "
    "has no resource-level permissions; the pull actions are scoped to that repository."
)
_ENV_REASON = (
    "The environment holds no secrets: the data directory, the backup bucket URL and "
    "the region. Credentials come from the task role."
)


def cpu_architecture(architecture: Architecture) -> ecs.CpuArchitecture:
    return (
        ecs.CpuArchitecture.ARM64
        if architecture is Architecture.ARM64
        else ecs.CpuArchitecture.X86_64
    )


def build_context_excludes(dockerignore: Path = DOCKERIGNORE) -> list[str]:
    """The patterns of .dockerignore, so the uploaded context equals what `docker build` sees."""
    lines = (line.strip() for line in dockerignore.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def backup_url(bucket_name: str) -> str:
    return f"s3://{bucket_name}/{BACKUP_PREFIX}"


def drill_failed_event_pattern(cluster_arn: str, drill_task_definition_arn: str) -> dict[str, Any]:
    """ECS task-stopped events of a failed drill: a non-zero exit, or a task that never ran."""
    return {
        "clusterArn": [cluster_arn],
        "taskDefinitionArn": [drill_task_definition_arn],
        "lastStatus": ["STOPPED"],
        "$or": [
            {"containers": {"exitCode": [{"anything-but": 0}]}},
            {"stopCode": ["TaskFailedToStart"]},
        ],
    }


def rule_metric(rule: events.IRule, name: str) -> cloudwatch.Metric:
    """A metric EventBridge publishes per rule of the default bus (dimension RuleName)."""
    return cloudwatch.Metric(
        namespace="AWS/Events",
        metric_name=name,
        dimensions_map={"RuleName": rule.rule_name},
        statistic="Sum",
        period=Duration.hours(1),
    )


def grant_backup_access(bucket: s3.IBucket, role: iam.IRole, *, write: bool) -> None:
    """Objects: only under BACKUP_PREFIX, only the actions Litestream and the sidecar use.

    Listing is bucket-wide: HeadBucket and GetBucketLocation carry no prefix, and a listing
    shows key names only.
    """
    object_actions = ["s3:GetObject"]
    if write:
        # Litestream compacts and retires its LTX files; the sidecar removes the objects of
        # reserved keys the PDS consumed. Bucket versioning keeps the history either way.
        object_actions += [
            "s3:PutObject",
            "s3:DeleteObject",
            "s3:AbortMultipartUpload",
            "s3:ListMultipartUploadParts",
        ]
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=object_actions,
            resources=[bucket.arn_for_objects(f"{BACKUP_PREFIX}/*")],
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket", "s3:GetBucketLocation"], resources=[bucket.bucket_arn]
        )
    )
    if bucket.encryption_key is not None:
        if write:
            bucket.encryption_key.grant_encrypt_decrypt(role)
        else:
            bucket.encryption_key.grant_decrypt(role)


class BackupSidecar(Construct):
    """The `backup` container of the PDS task plus the scheduled restore drill and its alarm."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: Config,
        task: PdsTask,
        backup_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, id)
        self._config = config
        self.backup_url = backup_url(backup_bucket.bucket_name)

        self.image_build = ContainerImageBuild(
            self,
            "Image",
            directory=str(PROJECT_ROOT),
            file=DOCKERFILE,
            exclude=build_context_excludes(),
            ignore_mode=IgnoreMode.DOCKER,
            platform=docker_platform(config.task.architecture),
            repository=image_repository(self, "ImageRepository"),
        )
        # Also runs the direct edge's certificate keeper (pds-aws-tls).
        self.image = self.image_build.to_ecs_docker_image_code()

        self._add_sidecar(task)
        grant_backup_access(backup_bucket, task.task_definition.task_role, write=True)
        self._add_error_metric()

        self._add_drill_task()
        grant_backup_access(backup_bucket, self.drill_task_definition.task_role, write=False)
        self._add_drill_schedule(task)
        self._add_drill_failure_alarm(task.cluster)
        self._acknowledge_nag_findings(task.task_definition, backup_bucket)

    def _add_sidecar(self, task: PdsTask) -> None:
        """The `backup` container in the PDS task: restore first, then replicate."""
        self.log_group = log_group(self, "LogGroup", self._config)
        self.container = self._backup_program_container(
            task.task_definition,
            BACKUP_CONTAINER,
            "run",
            environment={
                "PDS_DATA_DIRECTORY": DATA_DIRECTORY,
                "BACKUP_URL": self.backup_url,
                "BACKUP_HISTORY_DAYS": str(self._config.backup.history_days),
                "AWS_REGION": self._config.aws.region,
                # Litestream starts once the PDS answers here (after its migrations, which a
                # watching Litestream would lock out); the task's containers share localhost.
                "PDS_HEALTH_URL": PDS_HEALTH_URL,
            },
            health_check=ecs.HealthCheck(
                command=["CMD", "pds-aws-backup", "health"],
                interval=HEALTH_CHECK_INTERVAL,
                timeout=HEALTH_CHECK_TIMEOUT,
                retries=HEALTH_CHECK_RETRIES,
                start_period=HEALTH_CHECK_START_PERIOD,
            ),
            stop_timeout=STOP_TIMEOUT,
            log_group=self.log_group,
            linux_parameters_id="LinuxParameters",
        )
        mount(self.container, task.data_volume_name, DATA_DIRECTORY, read_only=False)

    def _backup_program_container(
        self,
        task_definition: ecs.TaskDefinition,
        name: str,
        subcommand: str,
        *,
        environment: dict[str, str],
        log_group: logs.ILogGroup,
        linux_parameters_id: str,
        health_check: ecs.HealthCheck | None = None,
        stop_timeout: Duration | None = None,
    ) -> ecs.ContainerDefinition:
        """Container `name` running `pds-aws-backup <subcommand>` from the backup image,
        logging to `log_group` under its own name."""
        return task_definition.add_container(
            name,
            container_name=name,
            image=self.image,
            essential=True,
            command=["pds-aws-backup", subcommand],
            environment=environment,
            health_check=health_check,
            stop_timeout=stop_timeout,
            # An init process reaps the Litestream children and forwards SIGTERM.
            linux_parameters=ecs.LinuxParameters(
                self, linux_parameters_id, init_process_enabled=True
            ),
            logging=ecs.LogDrivers.aws_logs(stream_prefix=name, log_group=log_group),
        )

    def _add_error_metric(self) -> None:
        """Counts the sidecar's ERROR lines for the stack's "backup errors" alarm."""
        self.error_metric = line_count_metric(
            self,
            "ErrorMetricFilter",
            self._config,
            log_group=self.log_group,
            pattern=ERROR_FILTER_PATTERN,
            name="BackupErrors",
        )

    def _add_drill_task(self) -> None:
        """The one-off drill task: restores the latest backup under its own scratch volume."""
        config = self._config
        self.drill_log_group = log_group(self, "DrillLogGroup", self._config)
        self.drill_task_definition = ecs.FargateTaskDefinition(
            self,
            "DrillTaskDefinition",
            cpu=config.task.cpu,
            memory_limit_mib=config.task.memory,
            # The drill restores everything the PDS task holds: give it the same disk.
            ephemeral_storage_gib=config.task.ephemeral_storage_setting,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=cpu_architecture(config.task.architecture),
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
            volumes=[ecs.Volume(name=DRILL_SCRATCH_VOLUME)],
        )
        self.drill_container = self._backup_program_container(
            self.drill_task_definition,
            DRILL_CONTAINER,
            "drill",
            environment={
                # Never the live data: the drill restores under its own scratch volume.
                "PDS_DATA_DIRECTORY": f"{DRILL_SCRATCH_DIRECTORY}/pds",
                "TMPDIR": DRILL_SCRATCH_DIRECTORY,
                "BACKUP_URL": self.backup_url,
                # `backup restore --at` runs here and seeds a generation with this history.
                "BACKUP_HISTORY_DAYS": str(config.backup.history_days),
                "AWS_REGION": config.aws.region,
            },
            log_group=self.drill_log_group,
            linux_parameters_id="DrillLinuxParameters",
        )
        mount(self.drill_container, DRILL_SCRATCH_VOLUME, DRILL_SCRATCH_DIRECTORY, read_only=False)

    def _add_drill_schedule(self, task: PdsTask) -> None:
        """The EventBridge rule that starts the drill task on [backup] drill_schedule, in the
        PDS task's cluster and network."""
        self.drill_schedule = events.Rule(
            self,
            "DrillSchedule",
            description="Weekly restore drill of the PDS backup ([backup] drill_schedule)",
            schedule=events.Schedule.expression(self._config.backup.drill_schedule),
            targets=[
                targets.EcsTask(
                    cluster=task.cluster,
                    task_definition=self.drill_task_definition,
                    launch_type=ecs.LaunchType.FARGATE,
                    platform_version=ecs.FargatePlatformVersion.LATEST,
                    subnet_selection=task.vpc_subnets,
                    security_groups=[task.security_group],
                    assign_public_ip=task.assign_public_ip,
                    propagate_tags=ecs.PropagatedTagSource.TASK_DEFINITION,
                )
            ],
        )

    def _add_drill_failure_alarm(self, cluster: ecs.ICluster) -> None:
        """An alarm on failed drills, seen from outside the drill.

        A crash, an out-of-memory kill or a task that never starts count as well as a drill
        that reports a problem: a rule matches ECS's task-stopped events of failed drills and
        the alarm counts the rule's own matches (AWS/Events TriggeredRules), with the RunTask
        calls the schedule could not make (FailedInvocations). No log group in between: an
        EventBridge log-group target needs a CloudWatch Logs resource policy (10 per account
        and region) and the group's ARN without the ":*" that Fn::GetAtt returns, or events
        are silently dropped. The stack adds the alarm topic as the rule's target.
        """
        self.drill_failed_rule = events.Rule(
            self,
            "DrillFailed",
            description="Restore drill task stopped with a non-zero exit or never started",
            event_pattern=events.EventPattern(
                source=["aws.ecs"],
                detail_type=["ECS Task State Change"],
                detail=drill_failed_event_pattern(
                    cluster.cluster_arn, self.drill_task_definition.task_definition_arn
                ),
            ),
        )
        drill_failures = rule_metric(self.drill_failed_rule, "TriggeredRules")
        schedule_failures = rule_metric(self.drill_schedule, "FailedInvocations")
        self.drill_failed_alarm = cloudwatch.Alarm(
            self,
            "DrillFailedAlarm",
            alarm_description=(
                "The restore drill of the PDS backup failed (see the drill log group; the "
                "stopped-task event itself goes to the alarm topic); the backup may not restore."
            ),
            metric=cloudwatch.MathExpression(
                expression="FILL(drill, 0) + FILL(launch, 0)",
                using_metrics={"drill": drill_failures, "launch": schedule_failures},
                label="Failed restore drills",
                period=Duration.hours(1),
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _acknowledge_nag_findings(
        self,
        task_definition: ecs.FargateTaskDefinition,
        backup_bucket: s3.IBucket,
    ) -> None:
        """cdk-nag findings caused by this construct, each with why it is accepted."""
        backup_objects = nag_text(self, backup_bucket.arn_for_objects(f"{BACKUP_PREFIX}/*"))
        self._acknowledge_own_findings(backup_objects)
        self._acknowledge_pds_task_findings(task_definition, backup_objects)
        self._acknowledge_deploy_time_build_findings()

    def _acknowledge_own_findings(self, backup_objects: str) -> None:
        """Findings on the resources this construct creates (the drill and its rules)."""
        _acknowledge(
            self,
            ("AwsSolutions::AwsSolutions-ECS2", _ENV_REASON),
            (f"AwsSolutions::AwsSolutions-IAM5[Resource::{backup_objects}]", _PREFIX_REASON),
            ("NIST.800.53.R5::NIST.800.53.R5-IAMNoInlinePolicy", _INLINE_REASON),
            (
                "NIST.800.53.R5::NIST.800.53.R5-CloudWatchLogGroupEncrypted",
                "CloudWatch Logs encrypts every log group at rest; these hold operational lines "
                "(counts, paths, durations, ECS task events), no account data or secrets, so a "
                "customer-managed KMS key would add cost without protecting anything more.",
            ),
        )
        _acknowledge(
            self.drill_task_definition.obtain_execution_role(),
            ("AwsSolutions::AwsSolutions-IAM5[Resource::*]", _ECR_REASON),
        )
        # Written by aws_events_targets.EcsTask; its ARN text depends on the stack's environment.
        events_role = self.drill_task_definition.node.find_child("EventsRole")
        _acknowledge(
            self.drill_task_definition,
            *(
                (
                    finding,
                    "EventBridge's RunTask role tags the drill task it starts, whose id is only "
                    "known then; the wildcard is limited to tasks in the PDS cluster.",
                )
                for finding in _wildcard_findings(events_role.node.find_child("DefaultPolicy"))
                if ":task/" in finding
            ),
        )

    def _acknowledge_pds_task_findings(
        self, task_definition: ecs.FargateTaskDefinition, backup_objects: str
    ) -> None:
        """The PDS task definition belongs to the stack; these findings come from what this
        construct adds to it (its container's environment, its grants, its ECR image)."""
        _acknowledge(task_definition, ("AwsSolutions::AwsSolutions-ECS2", _ENV_REASON))
        _acknowledge(
            task_definition.task_role,
            (f"AwsSolutions::AwsSolutions-IAM5[Resource::{backup_objects}]", _PREFIX_REASON),
            ("NIST.800.53.R5::NIST.800.53.R5-IAMNoInlinePolicy", _INLINE_REASON),
        )
        _acknowledge(
            task_definition.obtain_execution_role(),
            ("AwsSolutions::AwsSolutions-IAM5[Resource::*]", _ECR_REASON),
            ("NIST.800.53.R5::NIST.800.53.R5-IAMNoInlinePolicy", _INLINE_REASON),
        )

    def _acknowledge_deploy_time_build_findings(self) -> None:
        """deploy-time-build puts its CodeBuild project and Lambda handler at the stack's top
        level (one per stack, shared by every image it builds)."""
        for child in Stack.of(self).node.children:
            if child.node.id.startswith("ContainerImageBuild"):
                role = child.node.find_child("Role")
                _acknowledge(
                    child,
                    (
                        "AwsSolutions::AwsSolutions-CB4",
                        "The CodeBuild project only builds the backup image from our public "
                        "source; its artifacts are encrypted with the S3/ECR default keys.",
                    ),
                    (
                        "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:"
                        "policy/AmazonElasticContainerRegistryPublicReadOnly]",
                        "deploy-time-build lets the build pull public base images from ECR "
                        "Public with this read-only AWS managed policy.",
                    ),
                    ("NIST.800.53.R5::NIST.800.53.R5-IAMNoInlinePolicy", _INLINE_REASON),
                    *(
                        (
                            finding,
                            "deploy-time-build's CodeBuild role: its own log group and report "
                            "groups, reading the CDK asset bucket's source uploads, and "
                            "ecr:GetAuthorizationToken (no resource-level permissions).",
                        )
                        for finding in _wildcard_findings(role.node.find_child("DefaultPolicy"))
                    ),
                )
            elif child.node.id.startswith("DeployTimeBuildCustomResourceHandler"):
                _acknowledge(
                    child,
                    (
                        "AwsSolutions::AwsSolutions-L1",
                        "deploy-time-build pins its handler's "
                        "runtime (nodejs22.x); it only runs during deployments.",
                    ),
                    (
                        "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:"
                        "policy/service-role/AWSLambdaBasicExecutionRole]",
                        "The build trigger's role may only write its own logs.",
                    ),
                    ("NIST.800.53.R5::NIST.800.53.R5-IAMNoInlinePolicy", _INLINE_REASON),
                    (
                        "NIST.800.53.R5::NIST.800.53.R5-LambdaConcurrency",
                        "A deploy-time custom "
                        "resource handler, invoked once per image build by CloudFormation.",
                    ),
                    (
                        "NIST.800.53.R5::NIST.800.53.R5-LambdaDLQ",
                        "CloudFormation invokes the "
                        "handler synchronously and reports its failure; there is nothing to retry.",
                    ),
                    (
                        "NIST.800.53.R5::NIST.800.53.R5-LambdaInsideVPC",
                        "The handler only calls "
                        "the CodeBuild API; the VPC has no NAT, so inside it would reach nothing.",
                    ),
                )


def _acknowledge(scope: IConstruct, *findings: tuple[str, str]) -> None:
    acknowledge(scope, dict(findings))


def _wildcard_findings(policy: IConstruct) -> list[str]:
    """The AwsSolutions-IAM5 finding ids of a library-written policy's wildcard entries, as
    the rule pack names them here."""
    return [f"AwsSolutions::{finding}" for finding in wildcard_findings(policy)]
