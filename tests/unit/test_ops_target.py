"""Target resolution: the local runtime's state file and a deployed stack's outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pds_aws.errors import LocalStateError
from pds_aws.names import LocalState
from pds_aws.ops import target as t
from pds_aws.ops.target import TargetChoice, TargetError

STATE = {
    "url": "http://127.0.0.1:8123/",
    "pds_url": "http://127.0.0.1:8124",
    "admin_password": "local-admin-pw",
    "moto_url": "http://127.0.0.1:5111",
    "backup_url": "s3://pds-backup/pds",
    "data_dir": "/tmp/x/pds",
}
OUTPUTS = {
    t.OUTPUT_URL: "https://pds.example.com",
    t.OUTPUT_ADMIN_SECRET: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:admin-AbCdEf",
    t.OUTPUT_CLUSTER: "pds-cluster",
    t.OUTPUT_SERVICE: "pds-service",
    t.OUTPUT_DRILL_TASK: "arn:aws:ecs:eu-west-1:123456789012:task-definition/drill:3",
}


def test_local_target_from_state() -> None:
    target = t.local_target(LocalState.from_json(STATE))
    assert target.url == "http://127.0.0.1:8123"
    assert target.admin_password == "local-admin-pw"
    assert target.is_local and target.stack is None
    assert target.hostname == "127.0.0.1"
    public = t.local_target(LocalState.from_json({**STATE, "public_url": "http://localhost:8123"}))
    assert public.hostname == "localhost"
    assert "local-admin-pw" not in repr(target)


def test_local_state_names_missing_keys_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(LocalStateError, match=r"s.json: missing admin_password.*make run"):
        LocalState.from_json({"url": "http://x"}, Path("s.json"))
    (tmp_path / "state.json").write_text(json.dumps({"url": "http://x"}))
    choice = TargetChoice(local=True, state_file=tmp_path / "state.json")
    with pytest.raises(TargetError, match=r"missing admin_password.*make run"):
        t.resolve_target(choice)


def test_missing_state_file_says_how_to_start_the_runtime(tmp_path: Path) -> None:
    choice = TargetChoice(local=True, state_file=tmp_path / "state.json")
    with pytest.raises(TargetError, match="make run"):
        t.resolve_target(choice)
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(TargetError, match="not valid JSON"):
        t.resolve_target(choice)
    (tmp_path / "state.json").write_text(json.dumps(STATE))
    assert t.resolve_target(choice).url == "http://127.0.0.1:8123"


def test_stack_target_from_outputs() -> None:
    target = t.stack_target("MyPds", "eu-west-1", OUTPUTS, "pw")
    assert target.url == "https://pds.example.com"
    assert target.hostname == "pds.example.com"
    assert target.stack is not None
    assert target.stack.cluster == "pds-cluster"
    assert target.stack.drill_task_definition.endswith("drill:3")
    assert not target.is_local


def test_stack_target_without_ecs_outputs_still_serves_admin_commands() -> None:
    outputs = {k: OUTPUTS[k] for k in t.REQUIRED_OUTPUTS}
    target = t.stack_target("MyPds", "eu-west-1", outputs, "pw")
    assert target.stack is None


def test_stack_target_names_the_missing_output() -> None:
    with pytest.raises(TargetError, match=f"MyPds in eu-west-1 has no output {t.OUTPUT_URL}"):
        t.stack_target("MyPds", "eu-west-1", {t.OUTPUT_ADMIN_SECRET: "arn"}, "pw")


def test_outputs_by_key() -> None:
    response = {"Stacks": [{"Outputs": [{"OutputKey": "Url", "OutputValue": "https://p.example"}]}]}
    assert t.outputs_by_key(response) == {"Url": "https://p.example"}
    assert t.outputs_by_key({"Stacks": []}) == {}


@pytest.mark.parametrize(
    ("secret", "password"),
    [("plain-pw", "plain-pw"), ('{"password": "json-pw"}', "json-pw"), ('"q"', '"q"')],
)
def test_admin_password_from_secret(secret: str, password: str) -> None:
    assert t.admin_password_from_secret(secret) == password


def test_no_target_says_which_options_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(t.CONFIG_ENV, raising=False)
    with pytest.raises(TargetError, match=r"--local.*--stack NAME.*-c CONFIG"):
        t.resolve_target(TargetChoice())
