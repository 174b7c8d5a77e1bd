"""Justified exceptions to the compliance scanners, kept next to the resources they concern.

cdk-nag findings are acknowledged through CDK's Validations API; checkov reads the
`checkov.skip` metadata of a CloudFormation resource. Both always carry the reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import jsii
from aws_cdk import Acknowledgment, CfnResource, IAspect, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import IConstruct

# Lambda functions in the PDS stack are deploy-time custom-resource handlers (the PDS itself
# runs on Fargate): CloudFormation calls them synchronously a few times per deploy. A function
# that is not (the relay watchdog) carries its own reasons, which these do not replace.
DEPLOY_TIME_LAMBDA_CHECKOV_SKIPS: dict[str, str] = {
    "CKV_AWS_115": "deploy-time custom-resource handler, run once per deploy; reserving "
    "concurrency fails on new accounts whose limit is 10",
    "CKV_AWS_116": "called synchronously by CloudFormation, which reports and rolls back a "
    "failure; there is no asynchronous event for a dead-letter queue to keep",
    "CKV_AWS_117": "calls only AWS APIs at deploy time; inside the VPC it would need a NAT or "
    "interface endpoints, which the design leaves out",
    "CKV_AWS_173": "the environment holds only resource ARNs, no secret",
}

# Stack-wide decisions, by resource type: one reason for every resource of the type, wherever
# in the stack (and whichever component) it is created.
STACK_WIDE_CHECKOV_SKIPS: dict[str, dict[str, str]] = {
    "AWS::Lambda::Function": DEPLOY_TIME_LAMBDA_CHECKOV_SKIPS,
    "AWS::ECR::Repository": {
        "CKV_AWS_136": "images hold public code only (the backup program); ECR's default AES-256 "
        "encryption suffices",
        "CKV_AWS_51": "deploy-time-build tags each build with its asset hash, so a tag always "
        "names one content; a rebuild of unchanged sources pushes the same tag again, which "
        "immutable tags would refuse",
    },
    "AWS::Logs::LogGroup": {
        "CKV_AWS_158": "no log line carries a secret (secrets are ECS secrets, never logged); "
        "CloudWatch encrypts log data at rest with its own keys, and a customer KMS key "
        "would cost more than the logs",
    },
}


def _cfn(resource: IConstruct) -> CfnResource:
    if isinstance(resource, CfnResource):
        return resource
    child = resource.node.default_child
    if not isinstance(child, CfnResource):
        raise TypeError(f"{resource.node.path} has no CloudFormation resource to annotate")
    return child


def skip_checkov(resource: IConstruct, checks: Mapping[str, str]) -> None:
    """Add checkov skips (check id -> reason) to the resource's CloudFormation metadata."""
    cfn = _cfn(resource)
    current: Any = cfn.get_metadata("checkov") or {}
    skips = {entry["id"]: entry["comment"] for entry in current.get("skip", [])}
    skips.update(checks)
    cfn.add_metadata(
        "checkov", {"skip": [{"id": check, "comment": why} for check, why in sorted(skips.items())]}
    )


def acknowledge(
    resource: IConstruct, findings: Mapping[str, str], *, checkov: Mapping[str, str] | None = None
) -> None:
    """The findings `resource` keeps, each with its reason: cdk-nag's (rule id -> reason,
    acknowledged through CDK's Validations) and, with `checkov`, checkov's (check id -> reason)."""
    if checkov:
        skip_checkov(resource, checkov)
    if findings:
        Validations.of(resource).acknowledge(
            *(Acknowledgment(id=finding, reason=reason) for finding, reason in findings.items())
        )


@jsii.implements(IAspect)
class StackWideCheckovSkips:
    """Adds STACK_WIDE_CHECKOV_SKIPS to every resource of the listed types."""

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, CfnResource):
            checks = STACK_WIDE_CHECKOV_SKIPS.get(node.cfn_resource_type)
            if checks:
                current: Any = node.get_metadata("checkov") or {}
                own = {entry["id"] for entry in current.get("skip", [])}
                skip_checkov(node, {k: v for k, v in checks.items() if k not in own})


def nag_text(scope: IConstruct, value: str) -> str:
    """A token as cdk-nag prints it in finding ids."""
    return render_nag(Stack.of(scope).resolve(value))


def render_nag(node: Any) -> str:
    """Resolved CloudFormation as cdk-nag prints it: Ref -> <Id>, GetAtt -> <Id.Attr>."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and "Ref" in node:
        return f"<{node['Ref']}>"
    if isinstance(node, dict) and "Fn::GetAtt" in node:
        return f"<{'.'.join(node['Fn::GetAtt'])}>"
    if isinstance(node, dict) and "Fn::Join" in node:
        separator, parts = node["Fn::Join"]
        return str(separator).join(render_nag(part) for part in parts)
    if isinstance(node, dict) and isinstance(node.get("Fn::Sub"), str):
        return re.sub(r"\$\{([^}]+)\}", r"<\1>", node["Fn::Sub"])
    return json.dumps(node)


def wildcard_findings(policy: IConstruct) -> list[str]:
    """The AwsSolutions-IAM5 finding ids of a policy's wildcard actions and resources."""
    assert isinstance(policy, iam.Policy)
    document = Stack.of(policy).resolve(policy.document.to_json())
    findings: list[str] = []
    for statement in document.get("Statement", []):
        for kind in ("Action", "Resource"):
            entries = statement.get(kind, [])
            for entry in entries if isinstance(entries, list) else [entries]:
                text = render_nag(entry)
                if "*" in text:
                    findings.append(f"AwsSolutions-IAM5[{kind}::{text}]")
    return findings
