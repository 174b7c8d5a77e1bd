"""Compliance scanners over the synthesized stack: cdk-nag, cfn-lint and checkov.

Every finding is either fixed or acknowledged next to the resource with a reason
(Validations acknowledgments for cdk-nag, `checkov.skip` metadata for checkov).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App

from helpers import PROJECT_ROOT, add_nag_packs, assert_nag_packs_ran_with_reasons, nag_report
from pds_aws.config import Config
from pds_aws.infra.synth import CDK_CONTEXT, add_stack

# checkov pins a boto3 our lock file cannot share: it runs in its own uv tool environment.
CHECKOV_VERSION = "3.3.30"
CHECKOV_TIMEOUT_S = 900  # the first run installs checkov into uv's cache
CFN_LINT_TIMEOUT_S = 300


def _nag_findings(report: dict[str, Any]) -> list[str]:
    return [
        f"{violation['ruleName']} at {construct['constructPath']}: {violation['description']}"
        for plugin in report.get("pluginReports", [])
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
    ]


@pytest.mark.parametrize("mode", ["test", "prod", "direct"])
def test_cdk_nag_has_no_unacknowledged_findings(
    mode: str, example_config: Config, prod_config: Config, direct_config: Config, tmp_path: Path
) -> None:
    # "direct": the load-balancer-free shape, both its stacks (the app holds them).
    config = {"test": example_config, "prod": prod_config, "direct": direct_config}[mode]
    # Its own app: the plugins must not leak into the templates other tests read.
    app = App(context=dict(CDK_CONTEXT), outdir=str(tmp_path))
    add_stack(app, config)
    add_nag_packs(app)
    try:
        app.synth()
    except Exception as exc:  # ValidationFailed: the report says what
        findings = _nag_findings(nag_report(tmp_path))
        pytest.fail(
            f"cdk-nag failed ({exc.__class__.__name__}):\n" + "\n".join(findings or [str(exc)])
        )
    # Both packs ran (a synthesis without them would pass too), and found nothing open.
    report = nag_report(tmp_path)
    assert_nag_packs_ran_with_reasons(report)
    assert _nag_findings(report) == []


def _write_templates(tmp_path: Path, *templates: dict[str, Any]) -> list[Path]:
    paths = []
    for index, template in enumerate(templates):
        path = tmp_path / f"template-{index}.json"
        path.write_text(json.dumps(template, indent=1), encoding="utf-8")
        paths.append(path)
    return paths


def test_cfn_lint_reports_no_errors(
    stack_template: dict[str, Any],
    prod_stack_template: dict[str, Any],
    direct_templates: dict[str, dict[str, Any]],
    tmp_path: Path,
) -> None:
    paths = _write_templates(
        tmp_path, stack_template, prod_stack_template, *direct_templates.values()
    )
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run(
        [str(cfn_lint), "--format", "parseable", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=CFN_LINT_TIMEOUT_S,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=False,
    )
    # Exit code bits: 1 = lint failure, 2 = error, 4 = warning, 8 = informational.
    errors = [line for line in result.stdout.splitlines() if ":E" in line]
    assert result.returncode & 3 == 0 and not errors, result.stdout + result.stderr


def _uv() -> str:
    for candidate in (PROJECT_ROOT / ".tools" / "bin" / "uv", shutil.which("uv")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.fail("uv not found: run `make install` (it installs uv into .tools/bin)")


def _skip_reason(templates: list[dict[str, Any]], logical_id: str, check_id: str) -> str:
    """The comment of the `checkov.skip` entry for `check_id` on a resource ('' if none)."""
    for template in templates:
        resource = template["Resources"].get(logical_id, {})
        for entry in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            if entry.get("id") == check_id:
                return str(entry.get("comment", "")).strip()
    return ""


def test_checkov_has_no_failed_or_unjustified_checks(
    stack_template: dict[str, Any],
    prod_stack_template: dict[str, Any],
    direct_templates: dict[str, dict[str, Any]],
    tmp_path: Path,
) -> None:
    templates = [stack_template, prod_stack_template, *direct_templates.values()]
    paths = _write_templates(tmp_path, *templates)
    files = [arg for path in paths for arg in ("-f", str(path))]
    result = subprocess.run(
        [
            _uv(),
            "tool",
            "run",
            "--from",
            f"checkov=={CHECKOV_VERSION}",
            "checkov",
            "--skip-download",
            "--framework",
            "cloudformation",
            "--output",
            "json",
            *files,
        ],
        capture_output=True,
        text=True,
        timeout=CHECKOV_TIMEOUT_S,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
        check=False,
    )
    assert result.stdout.strip(), f"checkov printed nothing:\n{result.stderr[-3000:]}"
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed, unjustified, skipped = [], [], 0
    for report in reports:
        for check in report["results"].get("failed_checks", []):
            failed.append(f"{check['check_id']} {check['resource']}: {check['check_name']}")
        for check in report["results"].get("skipped_checks", []):
            skipped += 1
            # checkov's report drops the comment of a metadata skip: read it from the template.
            logical_id = check["resource"].split(".", 1)[1]
            if len(_skip_reason(templates, logical_id, check["check_id"])) < 15:
                unjustified.append(f"{check['check_id']} {check['resource']}")
    assert not failed, (
        "checkov failed checks; fix them or skip each with a reason next to the resource "
        "(pds_aws.infra.compliance.skip_checkov):\n" + "\n".join(failed)
    )
    assert not unjustified, "checkov skips without a reason:\n" + "\n".join(unjustified)
    assert skipped > 0  # the skips were read, so the metadata format is the one checkov uses
