"""Helpers shared by the tests: paths, the config factory, template queries, cdk-nag, waiting.

Test modules import them as `from helpers import ...`: pytest puts this folder on `sys.path`
when it loads tests/conftest.py (the default "prepend" import mode, no `__init__.py` here).
"""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks

from pds_aws.config import Config, parse_config
from pds_aws.local.processes import free_port as free_port

PROJECT_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = PROJECT_ROOT / "pds.example.toml"

T = TypeVar("T")

# --- the config ------------------------------------------------------------------------------


def example_data() -> dict[str, Any]:
    """pds.example.toml as TOML data (a fresh copy: change it freely)."""
    return tomllib.loads(EXAMPLE_CONFIG.read_text(encoding="utf-8"))


def make_config(**sections: dict[str, Any]) -> Config:
    """The example config with some keys replaced: make_config(aws={"mode": "prod"})."""
    data = example_data()
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return parse_config(data, EXAMPLE_CONFIG)


# --- template queries ------------------------------------------------------------------------

Template = Mapping[str, Any]
Resources = dict[str, dict[str, Any]]

TASK_DEFINITION = "AWS::ECS::TaskDefinition"


def resources(template: Template, kind: str) -> Resources:
    """The resources of one type, by logical id."""
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def properties(template: Template, kind: str) -> list[dict[str, Any]]:
    """The properties of every resource of one type."""
    return [r.get("Properties", {}) for r in resources(template, kind).values()]


def only(template: Template, kind: str) -> dict[str, Any]:
    """The one resource of a type (fails if there are none or several)."""
    found = resources(template, kind)
    assert len(found) == 1, f"expected one {kind}, found {sorted(found)}"
    return next(iter(found.values()))


def ref_type(template: Template, value: Any) -> str:
    """The resource type a `{"Ref": ...}` points at."""
    assert isinstance(value, dict) and "Ref" in value, f"{value!r} is not a Ref"
    return str(template["Resources"][value["Ref"]]["Type"])


def containers(task_definition: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The container definitions of a task definition resource, by name."""
    return {c["Name"]: c for c in task_definition["Properties"]["ContainerDefinitions"]}


def task_definition_with(template: Template, name: str) -> tuple[str, dict[str, Any]]:
    """The logical id and resource of the task definition that has the named container."""
    found = [
        (logical_id, definition)
        for logical_id, definition in resources(template, TASK_DEFINITION).items()
        if name in containers(definition)
    ]
    assert len(found) == 1, f"expected one task definition with container {name!r}: {found}"
    return found[0]


def service_task_definition(template: Template) -> dict[str, Any]:
    """The task definition the ECS service runs (the restore drill has its own)."""
    ref = only(template, "AWS::ECS::Service")["Properties"]["TaskDefinition"]["Ref"]
    return dict(template["Resources"][ref])


def container(template: Template, name: str) -> dict[str, Any]:
    """The named container definition (the object in the template, not a copy)."""
    return containers(task_definition_with(template, name)[1])[name]


def environment(template: Template, name: str) -> dict[str, Any]:
    """The named container's environment: variable -> value (a string or an intrinsic)."""
    return {e["Name"]: e["Value"] for e in container(template, name).get("Environment", [])}


def log_group(template: Template, name: str) -> Any:
    """The named container's awslogs group (a Ref to the stack's log group)."""
    return container(template, name)["LogConfiguration"]["Options"]["awslogs-group"]


def actions(statement: Mapping[str, Any]) -> list[str]:
    """A policy statement's actions as a list (IAM allows a single string)."""
    action = statement["Action"]
    return list(action) if isinstance(action, list) else [action]


def role_statements(template: Template, role_logical_id: str) -> list[dict[str, Any]]:
    """Every statement of the IAM policies attached to a role."""
    return [
        statement
        for policy in properties(template, "AWS::IAM::Policy")
        if {"Ref": role_logical_id} in policy.get("Roles", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def task_role(task_definition: Mapping[str, Any]) -> str:
    """The logical id of a task definition's task role."""
    return str(task_definition["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0])


# --- cdk-nag ---------------------------------------------------------------------------------

NAG_PACKS = frozenset({"AwsSolutions", "NIST.800.53.R5"})


def add_nag_packs(app: App) -> None:
    """Run cdk-nag's AwsSolutions and NIST 800-53 R5 packs on every synthesis of `app`."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), NIST80053R5Checks(app))


def nag_report(outdir: Path) -> dict[str, Any]:
    """The validation report CDK writes beside the templates ({} if no plugin ran)."""
    path = outdir / "validation-report.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def assert_nag_packs_ran_with_reasons(report: Mapping[str, Any]) -> None:
    """Both packs reported, and every acknowledged finding says why in a sentence."""
    plugin_reports = report.get("pluginReports", [])
    assert {r["pluginName"] for r in plugin_reports} >= NAG_PACKS, report
    for plugin_report in plugin_reports:
        for suppressed in plugin_report["suppressedViolations"]:
            assert len(suppressed["reason"]) > 40, suppressed


# --- waiting ---------------------------------------------------------------------------------


def wait_until(
    predicate: Callable[[], T], timeout: float, message: str, *, every: float = 0.2
) -> T:
    """Poll `predicate` until it returns something true and return that; after `timeout`
    seconds fail with `message` (what was awaited). The predicate may raise to fail early."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}")
        time.sleep(every)
