"""`[backup] history_days` reaches both containers that write Litestream configs."""

from __future__ import annotations

from typing import Any

from pds_aws.names import BACKUP_CONTAINER as CONTAINER_NAME
from pds_aws.names import DRILL_CONTAINER as DRILL_CONTAINER_NAME


def containers(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::ECS::TaskDefinition":
            for container in resource["Properties"]["ContainerDefinitions"]:
                found[container["Name"]] = container
    return found


def test_sidecar_and_drill_get_the_history_window(stack_template: dict[str, Any]) -> None:
    by_name = containers(stack_template)
    for name in (CONTAINER_NAME, DRILL_CONTAINER_NAME):
        environment = {e["Name"]: e["Value"] for e in by_name[name]["Environment"]}
        assert environment["BACKUP_HISTORY_DAYS"] == "30", name
