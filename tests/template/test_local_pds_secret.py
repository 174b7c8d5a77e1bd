"""The local runtime makes the PDS secret as a deploy does: the stack's own handler, run
against the local AWS (a moto server), fills the template's empty secret.

provision() reads the synthesized template; the PDS container's variables come out of the
secret by their JSON keys, as ECS reads them on AWS.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from itertools import count
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from pds_aws.infra.pds_secret import GENERATED_KEYS
from pds_aws.infra.pds_secret_keys import handler
from pds_aws.local import stack_resources, taskdef
from pds_aws.local.processes import free_port
from pds_aws.local.provision import LocalAwsState, client, provision
from pds_aws.names import JWT_SECRET_KEY, PDS_CONTAINER, SECRET_KEYS_RESOURCE_TYPE

REGION = "us-east-2"


@pytest.fixture
def endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    # The threaded server keeps moto's in-process state: start each test from an empty AWS.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"))
    try:
        yield url
    finally:
        server.stop()


def start(template: dict[str, Any], endpoint: str) -> LocalAwsState:
    resources = stack_resources.read_aws_resources(template)
    return provision(resources, endpoint=endpoint, region=REGION, stack_name="BlueskyPds")


def pds_secret(template: dict[str, Any], local: LocalAwsState) -> tuple[str, dict[str, str]]:
    (keys,) = (r for r in template["Resources"].values() if r["Type"] == SECRET_KEYS_RESOURCE_TYPE)
    arn = local.aws.secret_arns[keys["Properties"]["SecretId"]["Ref"]]
    return arn, json.loads(local.secret_strings[arn])


def test_the_local_secret_is_filled_by_the_stack_s_handler(
    stack_template: dict[str, Any], endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Values numbered by the handler module itself: they can only come from its code.
    numbers = count()
    monkeypatch.setattr(handler, "random_value", lambda length: f"v{next(numbers)}-{length}")
    local = start(stack_template, endpoint)
    _, value = pds_secret(stack_template, local)
    assert sorted(value.values()) == sorted(
        f"v{n}-{length}" for n, length in enumerate(GENERATED_KEYS.values())
    )
    assert {key: value[key].split("-")[1] for key in value} == {
        key: str(length) for key, length in GENERATED_KEYS.items()
    }

    # The PDS container reads each variable by its JSON key, as ECS does.
    task = taskdef.read_task_definition(stack_template, local.aws)
    refs = task.containers[PDS_CONTAINER].secrets
    for key in GENERATED_KEYS:
        assert (
            taskdef.secret_value(local.secret_strings[refs[key].secret_id], refs[key])
            == (value[key])
        )


def test_restarts_keep_the_values_and_a_hand_edited_key(
    stack_template: dict[str, Any], endpoint: str
) -> None:
    arn, first = pds_secret(stack_template, start(stack_template, endpoint))
    assert {key: len(v) for key, v in first.items()} == GENERATED_KEYS
    edited = {**first, JWT_SECRET_KEY: "rotated-by-hand"}
    client("secretsmanager", endpoint, REGION).put_secret_value(
        SecretId=arn, SecretString=json.dumps(edited)
    )
    _, second = pds_secret(stack_template, start(stack_template, endpoint))
    assert second == edited
