"""The deployed stack's ECS side: one-off backup tasks, scaling, ECS Exec and container logs.

Everything is found from the stack itself: the service (cluster and service outputs) names its
task definition, which names each container's environment, log group and task role; the drill
task definition is the stack's other ECS task definition. Reading those answers is pure
(`container_facts`, `drill_task_definition`, `run_task_request`); the calls are thin.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pds_aws.errors import PdsAwsError
from pds_aws.names import BACKUP_CONTAINER

if TYPE_CHECKING:
    import boto3

    from pds_aws.ops.target import StackResources

TASK_DEFINITION_TYPE = "AWS::ECS::TaskDefinition"
TASK_WAIT_S = 3600.0
SCALE_WAIT_S = 900.0
POLL_S = 5.0

Progress = Callable[[str], None]


class StackOperationError(PdsAwsError):
    """An ECS or CloudWatch step failed; the message says which and what to check."""


@dataclass(frozen=True)
class ContainerFacts:
    name: str
    environment: Mapping[str, str]
    command: tuple[str, ...]
    log_group: str | None
    stream_prefix: str | None

    def log_stream(self, task_arn: str) -> str | None:
        """The awslogs stream of this container in a task: PREFIX/CONTAINER/TASK-ID."""
        if not self.stream_prefix:
            return None
        return f"{self.stream_prefix}/{self.name}/{task_arn.rsplit('/', 1)[-1]}"


@dataclass(frozen=True)
class TaskDefinitionFacts:
    arn: str
    task_role_arn: str | None
    containers: Mapping[str, ContainerFacts]


def container_facts(task_definition: Mapping[str, Any]) -> TaskDefinitionFacts:
    """The containers of a DescribeTaskDefinition `taskDefinition`."""
    containers = {}
    for container in task_definition.get("containerDefinitions", []):
        options = (container.get("logConfiguration") or {}).get("options", {})
        containers[container["name"]] = ContainerFacts(
            name=container["name"],
            environment={e["name"]: e["value"] for e in container.get("environment", [])},
            command=tuple(container.get("command", [])),
            log_group=options.get("awslogs-group"),
            stream_prefix=options.get("awslogs-stream-prefix"),
        )
    return TaskDefinitionFacts(
        arn=str(task_definition["taskDefinitionArn"]),
        task_role_arn=task_definition.get("taskRoleArn"),
        containers=containers,
    )


def family_of(task_definition_arn: str) -> str:
    """`pds-task` from `arn:aws:ecs:...:task-definition/pds-task:7`."""
    return task_definition_arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]


def drill_task_definition(resources: Sequence[Mapping[str, Any]], service_task_arn: str) -> str:
    """The stack's task definition that is not the service's: the restore drill."""
    service_family = family_of(service_task_arn)
    others = [
        str(r["PhysicalResourceId"])
        for r in resources
        if r.get("ResourceType") == TASK_DEFINITION_TYPE
        and r.get("PhysicalResourceId")
        and family_of(str(r["PhysicalResourceId"])) != service_family
    ]
    if len(others) != 1:
        raise StackOperationError(
            f"expected one restore-drill task definition besides the service's, found "
            f"{len(others)}; deploy the current version of the stack"
        )
    return others[0]


def run_task_request(
    *,
    cluster: str,
    task_definition: str,
    network_configuration: Mapping[str, Any],
    container: str,
    command: Sequence[str] | None = None,
    task_role_arn: str | None = None,
    started_by: str = "pds-aws",
) -> dict[str, Any]:
    """RunTask input for a one-off task in the service's subnets and security group."""
    overrides: dict[str, Any] = {}
    if command:
        overrides["containerOverrides"] = [{"name": container, "command": list(command)}]
    if task_role_arn:
        overrides["taskRoleArn"] = task_role_arn
    request: dict[str, Any] = {
        "cluster": cluster,
        "taskDefinition": task_definition,
        "launchType": "FARGATE",
        "count": 1,
        "startedBy": started_by,
        "networkConfiguration": dict(network_configuration),
    }
    if overrides:
        request["overrides"] = overrides
    return request


def container_exit(task: Mapping[str, Any], container: str) -> tuple[int | None, str]:
    """Exit code and reason of one container of a DescribeTasks task."""
    for c in task.get("containers", []):
        if c.get("name") == container:
            reason = c.get("reason") or task.get("stoppedReason") or ""
            return c.get("exitCode"), str(reason)
    return None, str(task.get("stoppedReason", "container not found in the task"))


# -- calls ------------------------------------------------------------------------------------


@dataclass
class Stack:
    """A deployed stack's ECS service, read once (`Stack.read`)."""

    session: boto3.Session
    resources: StackResources
    network_configuration: Mapping[str, Any]
    service_task: TaskDefinitionFacts

    @classmethod
    def read(cls, session: boto3.Session, resources: StackResources) -> Stack:
        ecs = session.client("ecs")
        services = ecs.describe_services(cluster=resources.cluster, services=[resources.service])
        if not services["services"]:
            raise StackOperationError(
                f"service {resources.service} not found in cluster {resources.cluster}"
            )
        service = services["services"][0]
        task_def = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])
        return cls(
            session=session,
            resources=resources,
            network_configuration=service.get("networkConfiguration", {}),
            service_task=container_facts(task_def["taskDefinition"]),
        )

    def backup_env(self) -> dict[str, str]:
        """What the backup program needs to read this stack's backups from here."""
        backup = self.service_task.containers.get(BACKUP_CONTAINER)
        if backup is None or "BACKUP_URL" not in backup.environment:
            raise StackOperationError("the service's task has no backup container with BACKUP_URL")
        env = {"BACKUP_URL": backup.environment["BACKUP_URL"], "AWS_REGION": self.resources.region}
        if self.resources.profile:
            env["AWS_PROFILE"] = self.resources.profile
        return env

    def drill_task(self) -> TaskDefinitionFacts:
        arn = self.resources.drill_task_definition
        if not arn:
            listing = self.session.client("cloudformation").describe_stack_resources(
                StackName=self.resources.stack_name
            )
            arn = drill_task_definition(listing["StackResources"], self.service_task.arn)
        ecs = self.session.client("ecs")
        return container_facts(ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"])

    def run_one_off(
        self,
        task: TaskDefinitionFacts,
        container: str,
        command: Sequence[str] | None,
        progress: Progress,
        *,
        task_role_arn: str | None = None,
    ) -> tuple[int | None, list[str]]:
        """Run a one-off task to its end; its exit code and its container's log lines."""
        ecs = self.session.client("ecs")
        request = run_task_request(
            cluster=self.resources.cluster,
            task_definition=task.arn,
            network_configuration=self.network_configuration,
            container=container,
            command=command,
            task_role_arn=task_role_arn,
        )
        started = ecs.run_task(**request)
        if started.get("failures") or not started.get("tasks"):
            raise StackOperationError(f"ECS did not start the task: {started.get('failures')}")
        task_arn = started["tasks"][0]["taskArn"]
        progress(f"started task {task_arn.rsplit('/', 1)[-1]}; waiting for it to stop")
        deadline = time.monotonic() + TASK_WAIT_S
        described: Mapping[str, Any] = {}
        while time.monotonic() < deadline:
            described = ecs.describe_tasks(cluster=self.resources.cluster, tasks=[task_arn])[
                "tasks"
            ][0]
            if described.get("lastStatus") == "STOPPED":
                break
            time.sleep(POLL_S)
        else:
            raise StackOperationError(f"task {task_arn} still running after {TASK_WAIT_S:.0f} s")
        code, reason = container_exit(described, container)
        facts = task.containers[container]
        lines = list(self.log_lines(facts, task_arn))
        if code is None:
            lines.append(f"(no exit code: {reason})")
        return code, lines

    def log_lines(self, container: ContainerFacts, task_arn: str) -> Iterator[str]:
        stream = container.log_stream(task_arn)
        if not (container.log_group and stream):
            return
        logs = self.session.client("logs")
        kwargs: dict[str, Any] = {
            "logGroupName": container.log_group,
            "logStreamName": stream,
            "startFromHead": True,
        }
        while True:
            try:
                page = logs.get_log_events(**kwargs)
            except logs.exceptions.ResourceNotFoundException:
                return
            yield from (e["message"] for e in page["events"])
            if not page["events"] or page["nextForwardToken"] == kwargs.get("nextToken"):
                return
            kwargs["nextToken"] = page["nextForwardToken"]

    def scale(
        self,
        desired: int,
        progress: Progress,
        *,
        wait_s: float = SCALE_WAIT_S,
        poll_s: float = POLL_S,
    ) -> None:
        """Set the service's desired count and wait until ECS has reached it.

        When it is not reached in time, the desired count is set back to what it was: a
        failed scale-down leaves the service as it was (serving), never half-stopped.
        """
        ecs = self.session.client("ecs")
        cluster, service = self.resources.cluster, self.resources.service
        before = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
        previous = int(before.get("desiredCount", desired))
        ecs.update_service(cluster=cluster, service=service, desiredCount=desired)
        progress(f"service {service}: desired count {desired}; waiting")
        deadline = time.monotonic() + wait_s
        while True:
            current = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
            if current["runningCount"] == desired and current.get("pendingCount", 0) == 0:
                progress(f"service {service}: {desired} task(s) running")
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(poll_s)
        if previous != desired:
            ecs.update_service(cluster=cluster, service=service, desiredCount=previous)
            raise StackOperationError(
                f"service {service} did not reach {desired} tasks in {wait_s:.0f} s; its "
                f"desired count is back at {previous}, as it was. Nothing else was changed"
            )
        raise StackOperationError(f"service {service} did not reach {desired} tasks in time")

    def running_task(self) -> str:
        ecs = self.session.client("ecs")
        arns = ecs.list_tasks(
            cluster=self.resources.cluster,
            serviceName=self.resources.service,
            desiredStatus="RUNNING",
        )["taskArns"]
        if not arns:
            raise StackOperationError(f"no running task in service {self.resources.service}")
        return str(arns[0])


def exec_session(stack: Stack, container: str, command: str) -> dict[str, Any]:
    """Start an ECS Exec session in the service's running task (the API half of `shell`)."""
    ecs = stack.session.client("ecs")
    response = ecs.execute_command(
        cluster=stack.resources.cluster,
        task=stack.running_task(),
        container=container,
        interactive=True,
        command=command,
    )
    return dict(response)


def session_manager_plugin() -> str | None:
    return shutil.which("session-manager-plugin")


def attach_terminal(stack: Stack, session_response: Mapping[str, Any], plugin: str) -> int:
    """Hand the ECS Exec session to the Session Manager plugin, as the AWS CLI does."""
    region = stack.resources.region
    target = {"Target": session_response.get("taskArn", "")}
    endpoint = f"https://ssm.{region}.amazonaws.com"
    argv = [
        plugin,
        json.dumps(session_response["session"]),
        region,
        "StartSession",
        "",
        json.dumps(target),
        endpoint,
    ]
    return subprocess.run(argv, check=False).returncode


def follow_logs(
    session: boto3.Session,
    log_groups: Mapping[str, str],
    *,
    since_s: float,
    follow: bool,
    out: Callable[[str], None],
) -> None:
    """Print the containers' log events, oldest first; with `follow`, keep polling."""
    logs = session.client("logs")
    start_ms = int((time.time() - since_s) * 1000)
    seen: set[str] = set()
    while True:
        newest = start_ms
        for container, group in log_groups.items():
            kwargs: dict[str, Any] = {"logGroupName": group, "startTime": start_ms}
            while True:
                page = logs.filter_log_events(**kwargs)
                for event in page.get("events", []):
                    if event["eventId"] in seen:
                        continue
                    seen.add(event["eventId"])
                    newest = max(newest, int(event["timestamp"]))
                    out(f"{container:<7} {event['message'].rstrip()}")
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
        if not follow:
            return
        start_ms = newest
        time.sleep(2.0)
