"""The stack's ECS service as an upgrade's `Deployment`.

A deploy registers a revision of the service's task definition whose `pds` container runs the
official image at the new tag (labelled `pds-aws.image-tag`), and calls UpdateService with it.
ECS then stops the old task (min 0 % / max 100 %: its sidecar makes its final sync and releases
the backup lease) and starts the new one.

The deployment circuit breaker of the service may roll a failed deployment back by itself. The
two must never race: the upgrade only watches the deployment's `rolloutState` until ECS is done,
either COMPLETED, or FAILED and then ECS's own rollback deployment COMPLETED; only then does the
upgrade act (stop, compare, restore, start the old revision). "If rollback is on, when a service
deployment fails, the service is rolled back to the last deployment that completed successfully"
(ECS API reference, DeploymentCircuitBreaker).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from pds_aws.errors import OperationError
from pds_aws.names import DRILL_CONTAINER, IMAGE_TAG_LABEL, PDS_CONTAINER
from pds_aws.ops.backup_commands import last_summary, restore_command
from pds_aws.ops.upgrade import Deployed, Say
from pds_aws.ops.upgrade_data import RestorePoint, lease_holder, read_lease, restore_point_from
from pds_aws.versions import PDS_IMAGE_REPOSITORY

if TYPE_CHECKING:
    from pds_aws.ops.ecs import Stack
    from pds_aws.ops.target import Target

_T = TypeVar("_T")
__all__ = ["IMAGE_TAG_LABEL", "EcsDeployment"]
ROLLOUT_WAIT_S = 1800.0
POLL_S = 10.0
# What RegisterTaskDefinition takes back from a DescribeTaskDefinition answer.
REGISTER_KEYS = (
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "runtimePlatform",
    "ephemeralStorage",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
)


class Rollout(StrEnum):
    IN_PROGRESS = "in progress"
    COMPLETED = "completed"
    ROLLING_BACK = "failed; ECS's circuit breaker is rolling back"
    ROLLED_BACK = "failed; ECS's circuit breaker rolled back"
    FAILED = "failed; no rollback by ECS"


def image_tag_of(task_definition: Mapping[str, Any]) -> str | None:
    """The PDS image tag a task definition runs, from the label upgrades put on it."""
    for container in task_definition.get("containerDefinitions", []):
        if container.get("name") == PDS_CONTAINER:
            tag = (container.get("dockerLabels") or {}).get(IMAGE_TAG_LABEL)
            return str(tag) if tag else None
    return None


def task_definition_for(task_definition: Mapping[str, Any], tag: str) -> dict[str, Any]:
    """RegisterTaskDefinition input: `task_definition` with the `pds` container on image
    `tag` (the official image; the stack's own ECR copy follows at the next `make deploy`)."""
    request = {k: task_definition[k] for k in REGISTER_KEYS if task_definition.get(k)}
    containers = []
    found = False
    for container in task_definition.get("containerDefinitions", []):
        container = dict(container)
        if container.get("name") == PDS_CONTAINER:
            found = True
            container["image"] = f"{PDS_IMAGE_REPOSITORY}:{tag}"
            container["dockerLabels"] = {
                **(container.get("dockerLabels") or {}),
                IMAGE_TAG_LABEL: tag,
            }
        containers.append(container)
    if not found:
        raise OperationError(f"the service's task definition has no {PDS_CONTAINER!r} container")
    request["containerDefinitions"] = containers
    return request


def judge_rollout(service: Mapping[str, Any], deployment_id: str) -> Rollout:
    """Where ECS is with deployment `deployment_id`, from a DescribeServices `service`."""
    deployments = service.get("deployments", [])
    ours = next((d for d in deployments if d.get("id") == deployment_id), None)
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    rollback = bool(
        (service.get("deploymentConfiguration") or {})
        .get("deploymentCircuitBreaker", {})
        .get("rollback")
    )
    if ours is not None and ours.get("status") == "PRIMARY":
        state = ours.get("rolloutState")
        if state == "COMPLETED":
            return Rollout.COMPLETED
        if state == "FAILED":
            return Rollout.ROLLING_BACK if rollback else Rollout.FAILED
        return Rollout.IN_PROGRESS
    # Ours is no longer the primary deployment: ECS's rollback is (once `primary` exists).
    if primary is None or primary.get("rolloutState") == "IN_PROGRESS":
        return Rollout.ROLLING_BACK
    if primary.get("rolloutState") == "COMPLETED" and len(deployments) == 1:
        return Rollout.ROLLED_BACK
    return Rollout.ROLLING_BACK


def service_problems(service: Mapping[str, Any]) -> list[str]:
    """What stops an upgrade of this service before anything is changed."""
    problems = []
    breaker = (service.get("deploymentConfiguration") or {}).get("deploymentCircuitBreaker") or {}
    if not breaker.get("enable"):
        problems.append(
            f"service {service.get('serviceName')} has no deployment circuit breaker: deploy "
            "the current version of the stack (`make deploy`)"
        )
    busy = [d for d in service.get("deployments", []) if d.get("rolloutState") == "IN_PROGRESS"]
    if busy or len(service.get("deployments", [])) > 1:
        problems.append(
            f"service {service.get('serviceName')} is in the middle of a deployment: wait until "
            "ECS has finished it (`pds-aws status`), then upgrade"
        )
    if service.get("desiredCount") != 1:
        problems.append(
            f"service {service.get('serviceName')} has desired count "
            f"{service.get('desiredCount')}, not 1: start it first"
        )
    return problems


@dataclass
class EcsDeployment:
    stack: Stack
    service_target: Target
    config_tag: str
    name: str = field(init=False)
    revisions: dict[str, str] = field(init=False, default_factory=dict)  # tag -> revision ARN

    def __post_init__(self) -> None:
        self.name = f"ECS service {self.stack.resources.service}"

    def _ecs(self) -> Any:
        return self.stack.session.client("ecs")

    def _service(self) -> dict[str, Any]:
        res = self.stack.resources
        found = self._ecs().describe_services(cluster=res.cluster, services=[res.service])
        return dict(found["services"][0])

    def current_tag(self) -> str:
        arn = self._service()["taskDefinition"]
        described = self._ecs().describe_task_definition(taskDefinition=arn)["taskDefinition"]
        tag = image_tag_of(described) or self.config_tag
        self.revisions[tag] = arn
        return tag

    def problems(self, target_tag: str) -> list[str]:
        return service_problems(self._service())

    def url(self) -> str:
        return self.service_target.url

    def target(self) -> Target:
        return self.service_target

    def backup_env(self) -> dict[str, str]:
        return self.stack.backup_env()

    def drill(self, say: Say) -> None:
        code, lines = self.stack.run_one_off(
            self.stack.drill_task(), DRILL_CONTAINER, None, lambda m: say("drill", m)
        )
        summary = last_summary(lines) or {}
        if code != 0 or not summary.get("ok"):
            raise OperationError(
                f"the restore drill failed (exit {code}: {summary.get('problems')}): nothing "
                "was deployed; fix the backup first"
            )
        say(
            "drill",
            f"passed: {summary.get('accounts')} accounts, {summary.get('databases')} databases",
        )

    def _revision(self, tag: str) -> str:
        if tag not in self.revisions:
            current = self._service()["taskDefinition"]
            described = self._ecs().describe_task_definition(taskDefinition=current)
            request = task_definition_for(described["taskDefinition"], tag)
            registered = self._ecs().register_task_definition(**request)["taskDefinition"]
            self.revisions[tag] = str(registered["taskDefinitionArn"])
        return self.revisions[tag]

    def _roll_out(self, tag: str, say: Say, watch: Callable[[], None] = lambda: None) -> Rollout:
        """UpdateService to `tag`'s revision, then wait until ECS has finished (never acting
        while its own rollback runs)."""
        res = self.stack.resources
        arn = self._revision(tag)
        updated = self._ecs().update_service(
            cluster=res.cluster,
            service=res.service,
            taskDefinition=arn,
            desiredCount=1,
            forceNewDeployment=True,  # a deployment of its own to watch, also from 0 tasks
        )["service"]
        primary = next(d for d in updated["deployments"] if d.get("status") == "PRIMARY")
        say("deploy", f"ECS deployment {primary['id']} of {arn.rsplit('/', 1)[-1]}")
        deadline = time.monotonic() + ROLLOUT_WAIT_S
        last = None
        while time.monotonic() < deadline:
            watch()
            state = judge_rollout(self._service(), str(primary["id"]))
            if state != last:
                say("deploy", f"rollout {state.value}")
                last = state
            if state in (Rollout.COMPLETED, Rollout.ROLLED_BACK, Rollout.FAILED):
                return state
            time.sleep(POLL_S)
        raise OperationError(
            f"ECS deployment {primary['id']} not finished after {ROLLOUT_WAIT_S:.0f} s; "
            "nothing more was changed: watch it in the ECS console, then rerun"
        )

    def deploy(self, tag: str, say: Say) -> Deployed:
        env = self.backup_env()
        old_holder = lease_holder(read_lease(env))
        point: list[RestorePoint] = []

        def watch() -> None:
            if not point:
                found = restore_point_from(read_lease(env), old_holder)
                if found is not None:
                    point.append(found)

        state = self._roll_out(tag, say, watch)
        watch()
        return Deployed(
            state is Rollout.COMPLETED, f"rollout {state.value}", point[0] if point else None
        )

    def stop(self, say: Say) -> None:
        self.stack.scale(0, lambda m: say("stop", m))

    def with_backup(self, work: Callable[[dict[str, str]], _T], say: Say) -> _T:
        return work(self.backup_env())

    def restore_to(self, point: RestorePoint, say: Say) -> None:
        at = point.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        code, _lines = self.stack.run_one_off(
            self.stack.drill_task(),
            DRILL_CONTAINER,
            restore_command(at, None),
            lambda m: say("restore", m),
            task_role_arn=self.stack.service_task.task_role_arn,
        )
        if code != 0:
            raise OperationError(
                f"restore-at {at} failed (exit {code}); the service is stopped. Retry with "
                f"`pds-aws backup restore --at {at} -c CONFIG`"
            )

    def start(self, tag: str, say: Say) -> None:
        state = self._roll_out(tag, say)
        if state is not Rollout.COMPLETED:
            raise OperationError(
                f"image {tag} did not start ({state.value}); check the service's events in the "
                "ECS console and the task logs (`pds-aws logs`)"
            )
