"""`pds-aws upgrade --local` between two real @atproto/pds versions (0.5.26 -> 0.5.35), each
result checked with the atproto client: a successful upgrade keeps every account and post; a
failed one without a schema change loses nothing; a failed one with a schema change is restored
to the restore point and drops exactly the writes it announced.

The failing targets are test-only wrappers around the real 0.5.35 (tests/support/
broken_release.cjs): describeServer answers 500 (smoke fails), and one of them first applies an
extra migration to account.sqlite. The writes "made on the new version" are posts the test
sends once the upgrade reports the new version stable, before its checks run.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from atproto import Client
from atproto_client.request import Request

from pds_aws.names import LocalState
from pds_aws.ops.upgrade import Outcome, UpgradeResult, run_upgrade
from pds_aws.ops.upgrade_data import parse_time
from pds_aws.ops.upgrade_local import LocalDeployment
from pds_aws.procs import pid_alive

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "pds.example.toml")
SUPPORT = ROOT / "tests" / "support"
OLD, NEW = "0.4.5026", "0.4.5035"
BROKEN, MIGRATING = "0.4.5035-broken", "0.4.5035-broken-migration"
LAUNCHERS = {
    BROKEN: (NEW, SUPPORT / "broken_pds_launcher.cjs"),
    MIGRATING: (NEW, SUPPORT / "migrating_broken_pds_launcher.cjs"),
}
TEST_TAGS = {BROKEN: "0.5.35", MIGRATING: "0.5.35"}
PASSWORD = "upgrade-pw-1"
START_TIMEOUT_S = 300.0
# The client's default is 5 s; account creation (a PLC operation) takes longer on a busy host.
CLIENT_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example config's template, synthesized once for the module's runtimes."""
    from pds_aws.config import load_config
    from pds_aws.infra.synth import synthesize

    path = tmp_path_factory.mktemp("template") / "template.json"
    path.write_text(json.dumps(synthesize(load_config(CONFIG))))
    return path


@pytest.fixture
def workdir(tmp_path: Path, template: Path) -> Iterator[Path]:
    """A local runtime at image 0.4.5026 (`pds-aws local up`, as `make run`); whichever
    runtime the test leaves running is stopped at the end."""
    env = {k: v for k, v in os.environ.items() if k != "PDS_AWS_CONFIG"}
    log = tmp_path / "local-up.log"
    command = ["local", "up", "-c", CONFIG, "--template", str(template)]
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "pds_aws.cli", *command],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    state_file = tmp_path / ".local" / "state.json"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _ready(state_file, process.pid):
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the local runtime did not start"
            time.sleep(0.5)
        yield tmp_path
    finally:
        _stop_any(state_file)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=180)


def _ready(state_file: Path, pid: int) -> bool:
    if not state_file.is_file():
        return False
    return int(json.loads(state_file.read_text()).get("supervisor_pid", 0)) == pid


def _stop_any(state_file: Path) -> None:
    try:
        pid = LocalState.read(state_file).supervisor_pid
    except Exception:
        return
    if pid and pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 180
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.5)


def state_of(workdir: Path) -> LocalState:
    return LocalState.read(workdir / ".local" / "state.json")


def version_of(url: str) -> str:
    with urllib.request.urlopen(url + "/xrpc/_health", timeout=10) as response:
        return str(json.loads(response.read())["version"])


def client_for(url: str, handle: str) -> tuple[Client, str]:
    """A logged-in client and the account's DID (no app view: no profile to fetch)."""
    client = Client(base_url=f"{url}/xrpc", request=Request(timeout=CLIENT_TIMEOUT_S))
    client.login(handle, PASSWORD, fetch_bsky_profile=False)
    return client, str(client.com.atproto.server.get_session().did)


def post(url: str, handle: str, text: str) -> None:
    client, did = client_for(url, handle)
    client.send_post(text, profile_identify=did)


def invite_code(state: LocalState, uses: int) -> str:
    """An invite code from the admin API (the example config requires invites)."""
    token = base64.b64encode(f"admin:{state.admin_password}".encode()).decode()
    request = urllib.request.Request(
        state.url + "/xrpc/com.atproto.server.createInviteCode",
        data=json.dumps({"useCount": uses}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.loads(response.read())["code"])


def seed(state: LocalState, handles: tuple[str, ...], posts: int) -> None:
    url = state.url
    code = invite_code(state, len(handles))
    anonymous = Client(base_url=f"{url}/xrpc", request=Request(timeout=CLIENT_TIMEOUT_S))
    for handle in handles:
        anonymous.com.atproto.server.create_account(
            {
                "handle": handle,
                "email": f"{handle}@example.com",
                "password": PASSWORD,
                "invite_code": code,
            }
        )
        for i in range(posts):
            post(url, handle, f"{handle} before the upgrade {i}")


def posts_of(url: str, handles: tuple[str, ...]) -> dict[str, list[str]]:
    """Every account's post texts, read back with the atproto client (each logs in)."""
    found = {}
    for handle in handles:
        client, did = client_for(url, handle)
        records = client.com.atproto.repo.list_records(
            {"repo": did, "collection": "app.bsky.feed.post", "limit": 100}
        ).records
        found[handle] = sorted(str(r.value.text) for r in records)
    return found


@dataclass
class Upgrade:
    """Runs the upgrade; optionally writes on the new version once it is reported stable."""

    workdir: Path
    write_on_new: Callable[[str], None] | None = None
    steps: list[tuple[str, str]] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)

    def run(self, tag: str) -> UpgradeResult:
        deployment = LocalDeployment(
            self.workdir / ".local" / "state.json", CONFIG, launchers=LAUNCHERS
        )

        def say(step: str, message: str) -> None:
            self.steps.append((step, message))
            print(f"[{step}] {message}", flush=True)
            if step == "stable" and self.write_on_new is not None:
                self.write_on_new(deployment.url())

        def confirm(question: str) -> bool:
            self.questions.append(question)
            return True

        return run_upgrade(deployment, tag, confirm=confirm, say=say, known=TEST_TAGS)

    def said(self, step: str) -> list[str]:
        return [message for s, message in self.steps if s == step]


def test_upgrade_to_0_5_35_keeps_every_account_and_post(workdir: Path) -> None:
    handles = ("alice.test", "bob.test")
    url = state_of(workdir).url
    seed(state_of(workdir), handles, posts=2)
    before = posts_of(url, handles)
    assert version_of(url) == "0.5.26"

    upgrade = Upgrade(workdir)
    result = upgrade.run(NEW)

    assert result.outcome is Outcome.UPGRADED, upgrade.steps
    assert [line for line in upgrade.said("versions") if "0.5.26" in line or "0.5.35" in line]
    assert upgrade.said("drill") and upgrade.said("smoke") and upgrade.said("doctor")
    assert result.point is not None and result.point.released
    assert not upgrade.questions
    state = state_of(workdir)
    assert state.image_tag == NEW and version_of(state.url) == "0.5.35"
    assert posts_of(state.url, handles) == before
    post(state.url, "alice.test", "after the upgrade")  # the new version takes writes


def test_failed_upgrade_without_schema_change_loses_nothing(workdir: Path) -> None:
    handles = ("carol.test",)
    seed(state_of(workdir), handles, posts=2)
    new_posts = ["carol.test on the new version 0", "carol.test on the new version 1"]

    def write_on_new(new_url: str) -> None:
        for text in new_posts:
            post(new_url, "carol.test", text)

    upgrade = Upgrade(workdir, write_on_new)
    result = upgrade.run(BROKEN)

    assert result.outcome is Outcome.ROLLED_BACK, upgrade.steps
    assert any("describeServer" in failure for failure in result.failures)
    assert result.schema_changes == () and not upgrade.questions
    # The old version took the databases as they were: the posts made on 0.5.35 are kept.
    assert result.dropped is not None and result.dropped.count == len(new_posts)
    state = state_of(workdir)
    assert state.image_tag == OLD and version_of(state.url) == "0.5.26"
    kept = posts_of(state.url, handles)["carol.test"]
    assert kept == sorted([f"carol.test before the upgrade {i}" for i in range(2)] + new_posts)


def test_failed_upgrade_with_schema_change_drops_exactly_the_announced_writes(
    workdir: Path,
) -> None:
    handles = ("dave.test", "erin.test")
    url = state_of(workdir).url
    seed(state_of(workdir), handles, posts=2)
    before = posts_of(url, handles)
    new_posts = [("dave.test", "dave on the new version"), ("erin.test", "erin on the new version")]

    def write_on_new(new_url: str) -> None:
        for handle, text in new_posts:
            post(new_url, handle, text)

    upgrade = Upgrade(workdir, write_on_new)
    result = upgrade.run(MIGRATING)

    assert result.outcome is Outcome.RESTORED, upgrade.steps
    assert any("999_upgrade_test_extra" in change for change in result.schema_changes)
    dropped = result.dropped
    assert dropped is not None
    # Announced before restoring, and asked once: the two posts made on the new version.
    assert (dropped.count, dict(dropped.by_type), dropped.accounts) == (2, {"append": 2}, 2)
    assert dropped.first is not None and dropped.last is not None
    assert result.point is not None and parse_time(dropped.first) > result.point.at
    assert len(upgrade.questions) == 1 and "drop 2 writes" in upgrade.questions[0]
    assert any(dropped.describe() in message for message in upgrade.said("rollback"))
    # Restored to the point: exactly those posts are gone, everything before is there.
    state = state_of(workdir)
    assert state.image_tag == OLD and version_of(state.url) == "0.5.26"
    assert posts_of(state.url, handles) == before
    post(state.url, "dave.test", "after the rollback")  # the old version runs and takes writes
