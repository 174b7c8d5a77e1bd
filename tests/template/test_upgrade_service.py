"""What `pds-aws upgrade` relies on in the deployed service (ECS behaviour no test runs here).

- The upgrade waits for the deployment's `rolloutState` and, when it FAILED, for ECS's own
  rollback: "If rollback is on, when a service deployment fails, the service is rolled back to
  the last deployment that completed successfully" (ECS API reference,
  DeploymentCircuitBreaker). So the service must have the circuit breaker with rollback, and
  `upgrade_aws.service_problems` refuses a service without it.
- Its restore point is the old task's lease release: with a minimum healthy percent of 0 and a
  maximum of 100 ECS stops the old task before it starts the new one (ECS developer guide,
  "Deploy Amazon ECS services by replacing tasks": minimumHealthyPercent / maximumPercent bound
  the RUNNING and PENDING tasks), and the new task's sidecar waits for the lease either way.
- The new revision keeps the service's task definition as it is except the `pds` image, so the
  `pds` container must exist under that name in the template.
"""

from __future__ import annotations

from typing import Any

from pds_aws.names import PDS_CONTAINER
from pds_aws.ops.upgrade_aws import service_problems, task_definition_for


def _only(template: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [r for r in template["Resources"].values() if r["Type"] == kind]
    assert len(found) == 1, kind
    return found[0]


def test_the_service_lets_ecs_roll_back_and_replaces_the_task_one_at_a_time(
    stack_template: dict[str, Any],
) -> None:
    properties = _only(stack_template, "AWS::ECS::Service")["Properties"]
    deployment = properties["DeploymentConfiguration"]
    assert deployment["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    assert (deployment["MinimumHealthyPercent"], deployment["MaximumPercent"]) == (0, 100)
    # The same facts as DescribeServices returns them pass the upgrade's own check.
    described = {
        "serviceName": "pds",
        "desiredCount": properties["DesiredCount"],
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": {
                "enable": deployment["DeploymentCircuitBreaker"]["Enable"],
                "rollback": deployment["DeploymentCircuitBreaker"]["Rollback"],
            }
        },
        "deployments": [{"id": "a", "status": "PRIMARY", "rolloutState": "COMPLETED"}],
    }
    assert service_problems(described) == []


def test_the_task_definition_has_the_pds_container_the_upgrade_retags(
    stack_template: dict[str, Any],
) -> None:
    task = next(
        r["Properties"]
        for r in stack_template["Resources"].values()
        if r["Type"] == "AWS::ECS::TaskDefinition"
        and any(c["Name"] == PDS_CONTAINER for c in r["Properties"]["ContainerDefinitions"])
    )
    described = {
        "family": "pds",
        "containerDefinitions": [
            {"name": c["Name"], "image": "resolved-at-deploy"} for c in task["ContainerDefinitions"]
        ],
    }
    request = task_definition_for(described, "0.4.5035")
    images = {c["name"]: c["image"] for c in request["containerDefinitions"]}
    assert images.pop(PDS_CONTAINER) == "ghcr.io/bluesky-social/pds:0.4.5035"
    assert set(images.values()) <= {"resolved-at-deploy"}
