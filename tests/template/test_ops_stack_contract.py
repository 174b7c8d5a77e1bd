"""What the operator commands read from a deployed stack is in the synthesized template.

`--stack` reads outputs by key, finds the drill task definition as the stack's other ECS task
definition and reads container names, BACKUP_URL and log settings from the task definitions;
these tests fail when the stack stops providing one of them.
"""

from __future__ import annotations

from typing import Any

from helpers import containers, environment, resources
from pds_aws import names
from pds_aws.ops import ecs, target


def test_the_stack_declares_the_outputs_the_cli_reads(stack_template: dict[str, Any]) -> None:
    outputs = set(stack_template["Outputs"])
    assert set(target.REQUIRED_OUTPUTS) <= outputs
    assert set(target.ECS_OUTPUTS) <= outputs


def test_service_and_drill_task_definitions(stack_template: dict[str, Any]) -> None:
    definitions = [
        containers(td) for td in resources(stack_template, ecs.TASK_DEFINITION_TYPE).values()
    ]
    # The drill is found as "the other task definition": there must be exactly two.
    assert len(definitions) == 2
    service = next(d for d in definitions if names.PDS_CONTAINER in d)
    drill = next(d for d in definitions if names.DRILL_CONTAINER in d)
    assert names.BACKUP_CONTAINER in service
    assert "BACKUP_URL" in environment(stack_template, names.BACKUP_CONTAINER)
    for container in (*service.values(), *drill.values()):
        options = container["LogConfiguration"]["Options"]
        assert options["awslogs-stream-prefix"], container["Name"]
        assert options["awslogs-group"], container["Name"]
