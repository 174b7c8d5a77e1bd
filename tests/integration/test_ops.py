"""The operator commands against the real PDS of the local runtime (`pds-aws local up`).

One local runtime serves the whole module. Every state change a command makes is checked
through the real `atproto` client, not through the command's own output. The point-in-time
restore test runs last: it stops and restarts the runtime.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from atproto import Client
from atproto_client.exceptions import AtProtocolError

from helpers import EXAMPLE_CONFIG, free_port, wait_until
from pds_aws.cli import main
from pds_aws.ops.smoke import SMOKE_CHECKS

pytestmark = pytest.mark.integration

START_TIMEOUT_S = 240.0
BACKUP_TIMEOUT_S = 90.0


class Runtime:
    """`pds-aws local up` in its own process group, as an operator runs it (`make run`)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.state_file = workdir / ".local" / "state.json"
        self.process: subprocess.Popen[bytes] | None = None
        self.state: dict[str, Any] = {}

    def start(self) -> dict[str, Any]:
        log = (self.workdir / "local-up.log").open("ab")
        env = {k: v for k, v in os.environ.items() if k != "PDS_AWS_CONFIG"}
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "pds_aws.cli", "local", "up"),
                *("-c", str(EXAMPLE_CONFIG), "--workdir", str(self.workdir)),
            ],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # Reap it as soon as it exits, as an operator's shell would: `backup restore` waits
        # for the supervisor's pid to disappear, and an unreaped child stays a zombie.
        threading.Thread(target=self.process.wait, daemon=True).start()
        process = self.process

        def ready_state() -> dict[str, Any] | None:
            if process.poll() is not None:
                raise RuntimeError(
                    f"local up exited: {(self.workdir / 'local-up.log').read_text()[-3000:]}"
                )
            if self.state_file.is_file():
                state: dict[str, Any] = json.loads(self.state_file.read_text())
                if state.get("supervisor_pid") == process.pid:
                    return state
            return None

        self.state = wait_until(ready_state, START_TIMEOUT_S, "local up to be ready", every=0.5)
        return self.state

    def wait_stopped(self, timeout: float = 180.0) -> None:
        if self.process is not None:
            self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=180)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    handle = Runtime(tmp_path_factory.mktemp("ops-runtime"))
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def local(runtime: Runtime) -> list[str]:
    return ["--local", "--state", str(runtime.state_file)]


def login(runtime: Runtime, handle: str, password: str) -> Client:
    client = Client(base_url=f"{runtime.state['url']}/xrpc")
    client.login(handle, password, fetch_bsky_profile=False)
    client.update_base_url(f"{runtime.state['url']}/xrpc")
    return client


def can_login(runtime: Runtime, handle: str, password: str) -> bool:
    try:
        login(runtime, handle, password)
    except AtProtocolError:
        return False
    return True


def create(capsys: pytest.CaptureFixture[str], runtime: Runtime, handle: str) -> dict[str, str]:
    result = cli(
        capsys,
        "admin",
        "account",
        "create",
        handle,
        "--email",
        f"{handle}@example.com",
        "--json",
        *local(runtime),
    )
    assert result.code == 0, result.err
    (row,) = result.json()
    return dict(row)


# -- accounts and invites ------------------------------------------------------------------


def test_create_and_list_accounts(capsys: pytest.CaptureFixture[str], runtime: Runtime) -> None:
    row = create(capsys, runtime, "alice.test")
    # The example config requires invites: the command minted one; the password it printed works.
    assert can_login(runtime, "alice.test", row["password"])
    listed = cli(capsys, "admin", "account", "list", "--json", *local(runtime))
    assert listed.code == 0
    assert {"handle": "alice.test", "did": row["did"], "status": "active"}.items() <= next(
        a for a in listed.json() if a["did"] == row["did"]
    ).items()
    table = cli(capsys, "admin", "account", "list", *local(runtime)).out
    assert table.splitlines()[0].split() == ["HANDLE", "DID", "EMAIL", "STATUS", "CREATED"]
    assert "alice.test" in table


def test_invite_codes_let_people_sign_up(
    capsys: pytest.CaptureFixture[str], runtime: Runtime
) -> None:
    result = cli(
        capsys,
        "admin",
        "invites",
        "create",
        "--count",
        "2",
        "--uses",
        "2",
        "--json",
        *local(runtime),
    )
    assert result.code == 0, result.err
    codes = [r["code"] for r in result.json()]
    assert len(codes) == 2
    anonymous = Client(base_url=f"{runtime.state['url']}/xrpc")
    for i, handle in enumerate(("inv1.test", "inv2.test", "inv3.test")):
        anonymous.com.atproto.server.create_account(
            {
                "handle": handle,
                "email": f"{handle}@example.com",
                "password": "pw-invited-1",
                "invite_code": codes[i // 2],
            }
        )
        assert can_login(runtime, handle, "pw-invited-1")
    # The first code allowed two sign-ups; a third is refused.
    with pytest.raises(AtProtocolError):
        anonymous.com.atproto.server.create_account(
            {
                "handle": "inv4.test",
                "email": "inv4@example.com",
                "password": "pw",
                "invite_code": codes[0],
            }
        )


def test_reset_password(capsys: pytest.CaptureFixture[str], runtime: Runtime) -> None:
    row = create(capsys, runtime, "bob.test")
    result = cli(
        capsys,
        "admin",
        "account",
        "reset-password",
        "bob.test",
        "--password",
        "new-pw-123",
        *local(runtime),
    )
    assert result.code == 0, result.err
    assert can_login(runtime, "bob.test", "new-pw-123")
    assert not can_login(runtime, "bob.test", row["password"])
    random_reset = cli(
        capsys, "admin", "account", "reset-password", row["did"], "--json", *local(runtime)
    )
    new_password = random_reset.json()["password"]
    assert can_login(runtime, "bob.test", new_password)


def test_update_email_and_handle(capsys: pytest.CaptureFixture[str], runtime: Runtime) -> None:
    row = create(capsys, runtime, "carol.test")
    result = cli(
        capsys,
        "admin",
        "account",
        "update",
        "carol.test",
        "--email",
        "carol@new.example.com",
        "--handle",
        "caroline.test",
        *local(runtime),
    )
    assert result.code == 0, result.err
    client = login(runtime, "caroline.test", row["password"])
    session = client.com.atproto.server.get_session()
    assert (session.handle, session.email, session.did) == (
        "caroline.test",
        "carol@new.example.com",
        row["did"],
    )
    nothing = cli(capsys, "admin", "account", "update", "caroline.test", *local(runtime))
    assert nothing.code == 2 and "nothing to update" in nothing.err


def test_takedown_and_reversal(capsys: pytest.CaptureFixture[str], runtime: Runtime) -> None:
    row = create(capsys, runtime, "dave.test")
    # Without --yes and without a terminal the command refuses and changes nothing.
    refused = cli(capsys, "admin", "account", "takedown", "dave.test", *local(runtime))
    assert refused.code == 1 and "--yes" in refused.err
    assert can_login(runtime, "dave.test", row["password"])

    done = cli(capsys, "admin", "account", "takedown", "dave.test", "--yes", *local(runtime))
    assert done.code == 0, done.err
    with pytest.raises(AtProtocolError, match="AccountTakedown"):
        login(runtime, "dave.test", row["password"])
    listed = cli(capsys, "admin", "account", "list", "--json", *local(runtime)).json()
    assert next(a for a in listed if a["did"] == row["did"])["status"] == "takendown"

    assert cli(capsys, "admin", "account", "untakedown", row["did"], *local(runtime)).code == 0
    assert can_login(runtime, "dave.test", row["password"])


def test_delete_account(capsys: pytest.CaptureFixture[str], runtime: Runtime) -> None:
    row = create(capsys, runtime, "erin.test")
    refused = cli(capsys, "admin", "account", "delete", "erin.test", *local(runtime))
    assert refused.code == 1
    assert can_login(runtime, "erin.test", row["password"])
    done = cli(capsys, "admin", "account", "delete", "erin.test", "--yes", *local(runtime))
    assert done.code == 0, done.err
    assert not can_login(runtime, "erin.test", row["password"])
    listed = cli(capsys, "admin", "account", "list", "--json", *local(runtime)).json()
    assert row["did"] not in {a["did"] for a in listed}
    unknown = cli(capsys, "admin", "account", "delete", "erin.test", "--yes", *local(runtime))
    assert unknown.code == 1 and "no account with handle" in unknown.err


def test_wrong_admin_password_is_refused(
    capsys: pytest.CaptureFixture[str], runtime: Runtime, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps({**runtime.state, "admin_password": "not-the-password"}))
    result = cli(capsys, "admin", "account", "list", "--local", "--state", str(state))
    assert result.code == 1 and "HTTP 401" in result.err


# -- smoke -----------------------------------------------------------------------------------


def test_smoke_passes_through_the_edge_and_cleans_up(
    capsys: pytest.CaptureFixture[str], runtime: Runtime
) -> None:
    row = create(capsys, runtime, "smoke.test")
    result = cli(
        capsys,
        "smoke",
        runtime.state["url"],
        "--handle",
        "smoke.test",
        "--password",
        row["password"],
    )
    assert result.code == 0, result.out
    # With an account every check of the list runs, and passes.
    passed = [line.split(":")[0] for line in result.out.splitlines() if line.startswith("PASS")]
    assert passed == [f"PASS  {check.name}" for check in SMOKE_CHECKS]
    # What the write path posted is gone again.
    client = login(runtime, "smoke.test", row["password"])
    posts = client.com.atproto.repo.list_records(
        {"repo": row["did"], "collection": "app.bsky.feed.post"}
    )
    assert posts.records == []


def test_smoke_fails_without_the_edge(capsys: pytest.CaptureFixture[str], runtime: Runtime) -> None:
    # Straight at the PDS port: the PDS answers robots.txt itself and 404 off the allow-list.
    result = cli(capsys, "smoke", runtime.state["pds_url"])
    assert result.code == 1
    failed = [line.split(":")[0] for line in result.out.splitlines() if line.startswith("FAIL")]
    assert failed == ["FAIL  robots.txt", "FAIL  outside the allow-list"]


def test_smoke_fails_with_a_wrong_password(
    capsys: pytest.CaptureFixture[str], runtime: Runtime
) -> None:
    create(capsys, runtime, "wrongpw.test")
    result = cli(
        capsys, "smoke", runtime.state["url"], "--handle", "wrongpw.test", "--password", "wrong"
    )
    assert result.code == 1
    failed = [line for line in result.out.splitlines() if line.startswith("FAIL")]
    # Exactly the checks that need the account fail; the others still pass.
    assert [f.split(":")[0] for f in failed] == [
        f"FAIL  {check.name}" for check in SMOKE_CHECKS if check.needs_account
    ]


# -- request-crawl -----------------------------------------------------------------------------


class _Relay(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append({"path": self.path, "body": body})
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_request_crawl(capsys: pytest.CaptureFixture[str], runtime: Runtime) -> None:
    relay = ThreadingHTTPServer(("127.0.0.1", 0), _Relay)
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    dead_port = free_port()  # a port nobody listens on: an unreachable relay
    try:
        good = f"http://127.0.0.1:{relay.server_address[1]}"
        result = cli(capsys, "request-crawl", good, *local(runtime))
        assert result.code == 0, result.out
        assert _Relay.received == [
            {"path": "/xrpc/com.atproto.sync.requestCrawl", "body": {"hostname": "localhost"}}
        ]
        mixed = cli(capsys, "request-crawl", good, f"http://127.0.0.1:{dead_port}", *local(runtime))
        assert mixed.code == 1
        assert [line[:4] for line in mixed.out.splitlines()] == ["OK  ", "FAIL"]
    finally:
        relay.shutdown()


# -- a deployed stack's target path, with moto server as AWS ------------------------------------


def _container(name: str, env: dict[str, str]) -> dict[str, Any]:
    return {
        "Name": name,
        "Image": f"{name}-image",
        "Memory": 512,
        "Environment": [{"Name": k, "Value": v} for k, v in env.items()],
        "LogConfiguration": {
            "LogDriver": "awslogs",
            "Options": {"awslogs-group": f"/pds-aws/{name}", "awslogs-stream-prefix": name},
        },
    }


def stack_template(url: str, secret_arn: str) -> dict[str, Any]:
    """The parts of the real stack the operator commands read: outputs, service, drill task."""
    task = {"NetworkMode": "awsvpc", "RequiresCompatibilities": ["FARGATE"]}
    task |= {"Cpu": "256", "Memory": "1024"}
    backup_env = {"BACKUP_URL": "s3://pds-backup-bucket/pds", "AWS_REGION": "eu-west-1"}
    return {
        "Resources": {
            "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.0.0.0/16"}},
            "Subnet": {
                "Type": "AWS::EC2::Subnet",
                "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.0.0.0/24"},
            },
            "Cluster": {"Type": "AWS::ECS::Cluster"},
            "TaskDefinition": {
                "Type": "AWS::ECS::TaskDefinition",
                "Properties": {
                    **task,
                    "Family": "pds",
                    "ContainerDefinitions": [
                        _container("pds", {}),
                        _container("backup", backup_env),
                    ],
                },
            },
            "DrillTaskDefinition": {
                "Type": "AWS::ECS::TaskDefinition",
                "Properties": {
                    **task,
                    "Family": "pds-drill",
                    "ContainerDefinitions": [_container("drill", backup_env)],
                },
            },
            "Service": {
                "Type": "AWS::ECS::Service",
                "Properties": {
                    "Cluster": {"Ref": "Cluster"},
                    "TaskDefinition": {"Ref": "TaskDefinition"},
                    "DesiredCount": 1,
                    "LaunchType": "FARGATE",
                    "NetworkConfiguration": {
                        "AwsvpcConfiguration": {"Subnets": [{"Ref": "Subnet"}]}
                    },
                },
            },
        },
        "Outputs": {
            "Url": {"Value": url},
            "AdminPasswordSecretArn": {"Value": secret_arn},
            "ClusterName": {"Value": {"Ref": "Cluster"}},
            "ServiceName": {"Value": {"Fn::GetAtt": ["Service", "Name"]}},
        },
    }


@pytest.fixture(scope="module")
def aws(runtime: Runtime) -> Iterator[dict[str, str]]:
    """moto server on a free port holding a stack whose Url output is the local runtime's edge."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    saved = {k: os.environ.get(k) for k in (*env, "AWS_PROFILE", "AWS_DEFAULT_REGION")}
    os.environ.update(env)
    for key in ("AWS_PROFILE", "AWS_DEFAULT_REGION"):
        os.environ.pop(key, None)
    try:
        session = boto3.Session(region_name="eu-west-1")
        secret = session.client("secretsmanager").create_secret(
            Name="pds-admin-password", SecretString=runtime.state["admin_password"]
        )
        template = stack_template(runtime.state["url"], secret["ARN"])
        session.client("cloudformation").create_stack(
            StackName="MyPds", TemplateBody=json.dumps(template)
        )
        session.client("s3").create_bucket(
            Bucket="pds-backup-bucket",
            CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
        )
        yield {"stack": "MyPds", "region": "eu-west-1"}
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


def stack_args(aws: dict[str, str]) -> list[str]:
    return ["--stack", aws["stack"], "--region", aws["region"]]


def test_stack_target_reads_outputs_and_the_admin_secret(
    capsys: pytest.CaptureFixture[str], runtime: Runtime, aws: dict[str, str]
) -> None:
    # The endpoint and the admin password come from the stack, not from the local state.
    row = create(capsys, runtime, "stacklist.test")
    result = cli(capsys, "admin", "account", "list", "--json", *stack_args(aws))
    assert result.code == 0, result.err
    assert row["did"] in {a["did"] for a in result.json()}
    created = cli(
        capsys,
        "admin",
        "account",
        "create",
        "frank.test",
        "--email",
        "frank@example.com",
        "--json",
        *stack_args(aws),
    )
    assert created.code == 0, created.err
    assert can_login(runtime, "frank.test", created.json()[0]["password"])


def test_stack_target_errors_name_the_fix(
    capsys: pytest.CaptureFixture[str], aws: dict[str, str]
) -> None:
    missing = cli(
        capsys, "admin", "account", "list", "--stack", "NoSuchStack", "--region", "eu-west-1"
    )
    assert missing.code == 2
    assert "stack NoSuchStack not found in eu-west-1" in missing.err


def test_stack_status_reads_the_backup_inside_the_vpc_through_the_drill_definition(
    capsys: pytest.CaptureFixture[str], runtime: Runtime, aws: dict[str, str]
) -> None:
    """On a stack the backup bucket can be read only through the VPC's S3 endpoint, so status
    reads it with a one-off task of the drill task definition running `pds-aws-backup status`.
    moto's ECS records the task but runs no container, so the read has no result: status must
    say the backup status is unavailable, and exit 1, instead of reporting a backup."""
    import boto3

    result = cli(capsys, "status", "--json", *stack_args(aws))
    status = result.json()
    assert status["version"]
    assert status["backup"] is None
    assert result.code == 1
    assert any(p.startswith("backup status unavailable") for p in status["problems"])
    session = boto3.Session(region_name=aws["region"])
    outputs = session.client("cloudformation").describe_stacks(StackName=aws["stack"])
    cluster = next(
        o["OutputValue"] for o in outputs["Stacks"][0]["Outputs"] if o["OutputKey"] == "ClusterName"
    )
    ecs = session.client("ecs")
    arns = [
        arn
        for state in ("RUNNING", "STOPPED")
        for arn in ecs.list_tasks(cluster=cluster, desiredStatus=state)["taskArns"]
    ]
    tasks = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []
    commands = [
        o.get("command")
        for t in tasks
        if "pds-drill" in t["taskDefinitionArn"]
        for o in t.get("overrides", {}).get("containerOverrides", [])
    ]
    assert any(c and c[-1] == "status" for c in commands), commands


def test_stack_drill_task_is_found_among_the_stack_resources(aws: dict[str, str]) -> None:
    import boto3

    from pds_aws.ops.ecs import Stack
    from pds_aws.ops.target import TargetChoice, resolve_target

    target = resolve_target(TargetChoice(stack_name=aws["stack"], region=aws["region"]))
    assert target.stack is not None
    stack = Stack.read(boto3.Session(region_name=aws["region"]), target.stack)
    drill = stack.drill_task()
    assert drill.arn.split("/")[-1].startswith("pds-drill:")
    assert drill.containers["drill"].log_group == "/pds-aws/drill"
    assert set(stack.service_task.containers) == {"pds", "backup"}


def test_stack_logs(capsys: pytest.CaptureFixture[str], aws: dict[str, str]) -> None:
    import boto3

    logs = boto3.client("logs", region_name=aws["region"])
    for container in ("pds", "backup"):
        group = f"/pds-aws/{container}"
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName=f"{container}/{container}/t1")
        logs.put_log_events(
            logGroupName=group,
            logStreamName=f"{container}/{container}/t1",
            logEvents=[
                {"timestamp": int(time.time() * 1000), "message": f"hello from {container}"}
            ],
        )
    both = cli(capsys, "logs", "--since", "1h", *stack_args(aws))
    assert both.code == 0, both.err
    assert sorted(both.out.splitlines()) == ["backup  hello from backup", "pds     hello from pds"]
    only = cli(capsys, "logs", "--since", "1h", "--container", "backup", *stack_args(aws))
    assert only.out.splitlines() == ["backup  hello from backup"]


def test_shell_explains_the_plugin_it_needs(
    capsys: pytest.CaptureFixture[str], aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    result = cli(capsys, "shell", *stack_args(aws))
    assert result.code == 2
    assert "session-manager-plugin" in result.err


# -- status, drill and point-in-time restore on the local runtime --------------------------------


def wait_backed_up(capsys: pytest.CaptureFixture[str], runtime: Runtime) -> dict[str, Any]:
    """Wait until the backup holds every account's latest commit (status says lag <= 1 s)."""
    last: dict[str, Any] = {}

    def backed_up() -> dict[str, Any] | None:
        result = cli(capsys, "status", "--json", "--max-backup-age", "1s", *local(runtime))
        last.update(result.json())
        return result.json() if result.code == 0 else None

    try:
        return wait_until(backed_up, BACKUP_TIMEOUT_S, "the backup to catch up", every=1.0)
    except AssertionError as timeout:
        raise AssertionError(f"{timeout}: {last.get('problems')}") from None


def test_status_reports_health_accounts_and_backup(
    capsys: pytest.CaptureFixture[str], runtime: Runtime
) -> None:
    row = create(capsys, runtime, "statusacct.test")
    status = wait_backed_up(capsys, runtime)
    assert status["ok"], status["problems"]
    assert status["version"] == runtime.state["pds_version"]
    listed = cli(capsys, "admin", "account", "list", "--json", *local(runtime)).json()
    assert status["accounts"] == len(listed)
    databases = status["backup"]["databases"]
    assert {"account.sqlite", "sequencer.sqlite"} <= set(databases)
    # Every account's repository is backed up (a deleted account's stays, for older restores).
    backed_up = {rel.split("/")[2] for rel in databases if rel.endswith("/store.sqlite")}
    assert row["did"] in backed_up
    assert {a["did"] for a in listed} <= backed_up
    table = cli(capsys, "status", *local(runtime))
    assert table.code == 0 and table.out.splitlines()[-1] == "status     ok"


def test_status_fails_when_the_backup_is_unreadable(
    capsys: pytest.CaptureFixture[str], runtime: Runtime, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps({**runtime.state, "backup_url": "s3://no-such-bucket/pds"}))
    result = cli(capsys, "status", "--json", "--local", "--state", str(state))
    assert result.code == 1
    (problem,) = result.json()["problems"]
    assert problem.startswith("backup status unavailable")


def test_drill_passes_and_fails_on_an_empty_backup(
    capsys: pytest.CaptureFixture[str], runtime: Runtime, tmp_path: Path
) -> None:
    create(capsys, runtime, "drillacct.test")
    wait_backed_up(capsys, runtime)
    listed = cli(capsys, "admin", "account", "list", "--json", *local(runtime)).json()
    result = cli(capsys, "backup", "drill", *local(runtime))
    assert result.code == 0, result.err
    summary = json.loads(result.out.rsplit("}", 1)[0] + "}")
    assert summary["ok"] and summary["accounts"] == len(listed) and summary["problems"] == []

    bucket = runtime.state["backup_url"].removeprefix("s3://").split("/")[0]
    state = tmp_path / "state.json"
    state.write_text(json.dumps({**runtime.state, "backup_url": f"s3://{bucket}/empty-prefix"}))
    empty = cli(capsys, "backup", "drill", "--local", "--state", str(state))
    assert empty.code == 1 and "drill FAILED" in empty.err


def _post_texts(runtime: Runtime, handle: str, password: str, did: str) -> set[str]:
    client = login(runtime, handle, password)
    records = client.com.atproto.repo.list_records(
        {"repo": did, "collection": "app.bsky.feed.post", "limit": 100}
    ).records
    return {r.value.text for r in records}


def test_point_in_time_restore_and_back_to_latest(
    capsys: pytest.CaptureFixture[str], runtime: Runtime
) -> None:
    row = create(capsys, runtime, "pitr.test")
    handle, password, did = "pitr.test", row["password"], row["did"]
    client = login(runtime, handle, password)
    client.send_post("before the restore point", profile_identify=did)
    assert wait_backed_up(capsys, runtime)["ok"]
    # The restore point (whole seconds) lies after the first post is in the backup; the second
    # post is stored in a later second (S3 object times have whole seconds).
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    restore_point = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    after = moment + timedelta(seconds=1)
    wait_until(lambda: datetime.now(UTC) >= after, 5, "the second after the restore point")
    client.send_post("after the restore point", profile_identify=did)
    assert wait_backed_up(capsys, runtime)["ok"]
    generation_before = cli(capsys, "status", "--json", *local(runtime)).json()["backup"][
        "current_generation"
    ]

    back = cli(capsys, "backup", "restore", "--at", restore_point, "--yes", *local(runtime))
    assert back.code == 0, back.err
    assert "NEW backup generation" in back.out
    runtime.wait_stopped()
    runtime.start()
    assert _post_texts(runtime, handle, password, did) == {"before the restore point"}
    status = cli(capsys, "status", "--json", *local(runtime)).json()
    assert status["backup"]["current_generation"] != generation_before
    assert generation_before in status["backup"]["generations"]  # history kept

    forward = cli(capsys, "backup", "restore", "--at", "latest", "--yes", *local(runtime))
    assert forward.code == 0, forward.err
    assert f"generation {generation_before}" in forward.out
    runtime.wait_stopped()
    runtime.start()
    assert _post_texts(runtime, handle, password, did) == {
        "before the restore point",
        "after the restore point",
    }
