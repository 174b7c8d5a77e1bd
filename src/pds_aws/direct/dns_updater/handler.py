"""EventBridge target: point the domain and *.domain at a PDS task that just started.

The rule (direct/construct.py) sends ECS "Task State Change" events of the PDS service's
tasks that reached RUNNING. The task's public address belongs to its network interface
(awsvpc), so: interface id from the event's ENI attachment -> DescribeNetworkInterfaces ->
public IPv4 -> one UPSERT of the two A records, with the configured short TTL.

Self-contained (standard library + boto3) because Lambda runs this file alone. Settings come
from the function's environment: HOSTED_ZONE_ID, DOMAIN, TTL.
"""

from __future__ import annotations

import logging
import os
from typing import Any

LOGGER = logging.getLogger(__name__)
LOGGER.setLevel(logging.INFO)


class EventError(Exception):
    """The event does not describe a running task with a network interface."""


def record_names(domain: str) -> list[str]:
    """The two names that follow the task: the PDS host and every handle under it."""
    return [domain, f"*.{domain}"]


def interface_id(detail: dict[str, Any]) -> str:
    """The task's elastic network interface id, from the ECS event's ENI attachment."""
    for attachment in detail.get("attachments", []):
        if attachment.get("type") != "eni":
            continue
        for entry in attachment.get("details", []):
            if entry.get("name") == "networkInterfaceId" and entry.get("value"):
                return str(entry["value"])
    raise EventError(f"task {detail.get('taskArn')} has no ENI attachment with an interface id")


def is_start(detail: dict[str, Any]) -> bool:
    """A task that reached RUNNING and is meant to keep running (not one being stopped)."""
    return detail.get("lastStatus") == "RUNNING" and detail.get("desiredStatus") == "RUNNING"


def change_batch(domain: str, address: str, ttl: int, task_arn: str) -> dict[str, Any]:
    return {
        "Comment": f"pds-aws: follow task {task_arn}"[:256],
        "Changes": [
            {
                "Action": "UPSERT",
                "ResourceRecordSet": {
                    "Name": name,
                    "Type": "A",
                    "TTL": ttl,
                    "ResourceRecords": [{"Value": address}],
                },
            }
            for name in record_names(domain)
        ],
    }


def on_task_state_change(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    import boto3

    detail = event.get("detail", {})
    task_arn = str(detail.get("taskArn", "?"))
    if not is_start(detail):
        LOGGER.info(
            "task %s: %s/%s, nothing to do",
            task_arn,
            detail.get("lastStatus"),
            detail.get("desiredStatus"),
        )
        return {"changed": False}
    eni = interface_id(detail)
    interfaces = boto3.client("ec2").describe_network_interfaces(NetworkInterfaceIds=[eni])
    association = interfaces["NetworkInterfaces"][0].get("Association", {})
    address = association.get("PublicIp")
    if not address:
        raise EventError(f"interface {eni} of task {task_arn} has no public IPv4 address")
    domain = os.environ["DOMAIN"]
    change = boto3.client("route53").change_resource_record_sets(
        HostedZoneId=os.environ["HOSTED_ZONE_ID"],
        ChangeBatch=change_batch(domain, address, int(os.environ["TTL"]), task_arn),
    )
    LOGGER.info(
        "task %s: %s and *.%s -> %s (change %s)",
        task_arn,
        domain,
        domain,
        address,
        change["ChangeInfo"]["Id"],
    )
    return {"changed": True, "address": address}
