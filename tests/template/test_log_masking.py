"""The PDS log group masks the rate-limit bypass key the PDS writes into its request log.

@atproto/pds logs each request's headers except authorization and dpop (dist/logger.js,
`reqSerializer` -> @atproto/common `obfuscateHeaders`), so operator tools sending
`x-ratelimit-bypass` put the key into the log. No emulator applies CloudWatch Logs data
protection; this asserts the template property AWS documents ("Help protect sensitive log data
with masking": a log group's data protection policy masks what its data identifiers match, at
ingestion, for everyone without logs:Unmask) and the custom identifier's documented limits
("Custom data identifiers": regex of at most 200 characters from a fixed character set).
tests/integration/test_local_edge_pds.py runs the pattern over the real PDS's log lines.
"""

from __future__ import annotations

import re
from typing import Any

from pds_aws.names import PDS_CONTAINER, RATE_LIMIT_BYPASS_LOG_PATTERN

# "Custom data identifier constraints" (CloudWatch Logs User Guide): letters, digits, the
# symbols _ # = @ / ; , - and space, and the regex reserved characters ^ $ ? [ ] { } | \\ * + .
ALLOWED_REGEX = re.compile(r"[A-Za-z0-9_#=@/;,\- ^$?\[\]{}|\\*+.]{1,200}")


def pds_log_group(template: dict[str, Any]) -> dict[str, Any]:
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::ECS::TaskDefinition":
            continue
        for definition in resource["Properties"]["ContainerDefinitions"]:
            if definition["Name"] == PDS_CONTAINER:
                group = definition["LogConfiguration"]["Options"]["awslogs-group"]["Ref"]
                return dict(template["Resources"][group]["Properties"])
    raise AssertionError("no pds container")


def test_the_pds_log_group_masks_the_bypass_key(stack_template: dict[str, Any]) -> None:
    policy = pds_log_group(stack_template)["DataProtectionPolicy"]
    identifiers = {i["Name"]: i["Regex"] for i in policy["Configuration"]["CustomDataIdentifier"]}
    (name,) = [n for n, regex in identifiers.items() if regex == RATE_LIMIT_BYPASS_LOG_PATTERN]
    masking = [s for s in policy["Statement"] if "Deidentify" in s["Operation"]]
    assert any(name in s["DataIdentifier"] for s in masking)
    assert ALLOWED_REGEX.fullmatch(RATE_LIMIT_BYPASS_LOG_PATTERN)


def test_the_pattern_masks_the_header_as_the_pds_logs_it() -> None:
    key = "Ab3" * 16
    line = (
        '{"level":30,"req":{"headers":{"host":"pds.example.com",'
        f'"x-ratelimit-bypass":"{key}","authorization":"Basic admin:***"'
        '}},"msg":"request completed"}'
    )
    masked = re.sub(RATE_LIMIT_BYPASS_LOG_PATTERN, "***", line)
    assert key not in masked
    assert '"host":"pds.example.com"' in masked and "Basic admin:***" in masked
