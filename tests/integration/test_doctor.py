"""`pds-aws doctor` and the relay stand-in against the real PDS of the local runtime.

The relay stand-in (tests/support/relay_standin.mjs) follows the PDS's firehose with
@atproto/sync, which verifies every commit's signature and inclusion proofs against the key in
the (local) PLC directory; it answers getHostStatus, getRepoStatus and requestCrawl from what
it verified. Each doctor check is seen passing, and failing with its fix when broken: the relay
reporting the host or one account throttled, the relay behind, the websocket path removed, the
edge down (last: it breaks the runtime).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from atproto import Client, models

from pds_aws.cli import main
from pds_aws.local import proxy as local_proxy
from pds_aws.local.paths import LocalPaths
from pds_aws.ops.smoke import SUBSCRIBE_REPOS_PATH, tiny_png

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "pds.example.toml"
STANDIN = ROOT / "tests" / "support" / "relay_standin.mjs"
START_TIMEOUT_S = 240.0
WAIT_S = 60.0


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("doctor-runtime")
    state_file = workdir / ".local" / "state.json"
    env = {k: v for k, v in os.environ.items() if k != "PDS_AWS_CONFIG"}
    with (workdir / "local-up.log").open("ab") as log:
        process = subprocess.Popen(
            ["pds-aws", "local", "up", "-c", str(CONFIG), "--workdir", str(workdir)],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def ready() -> dict[str, Any] | None:
        assert process.poll() is None, (workdir / "local-up.log").read_text()[-3000:]
        if state_file.is_file():
            state: dict[str, Any] = json.loads(state_file.read_text())
            if state.get("supervisor_pid") == process.pid:
                return {**state, "state_file": str(state_file)}
        return None

    try:
        yield wait_until(ready, "the local runtime", START_TIMEOUT_S)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=180)


@pytest.fixture(scope="module")
def relay(runtime: dict[str, Any]) -> Iterator[str]:
    # The Node binary itself: the venv's `bin/node` is a Python wrapper that would leave the
    # stand-in running when terminated.
    node = str(LocalPaths(root=ROOT).node)
    env = {
        **os.environ,
        "PDS_URL": runtime["url"],
        "PLC_URL": runtime["plc_url"],
        "PDS_HOSTNAME": "localhost",
        "PORT": "0",
    }
    process = subprocess.Popen(
        [node, str(STANDIN)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("listening "), line
    # Drain its output so it never blocks on a full pipe.
    threading.Thread(target=process.stdout.read, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{line.split()[1]}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def control(relay: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(relay + path, data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        value: dict[str, Any] = json.loads(response.read())
    return value


def doctor(
    runtime: dict[str, Any], capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["doctor", "--local", "--state", runtime["state_file"], *extra])
    return code, capsys.readouterr().out


def new_account(runtime: dict[str, Any], name: str) -> Client:
    """Created by the operator command (it mints the invite the example config requires)."""
    local = ["--local", "--state", runtime["state_file"]]
    email, password = f"{name}@example.com", "doctor-pw-1"
    assert (
        main(
            [
                "admin",
                "account",
                "create",
                f"{name}.test",
                "--email",
                email,
                "--password",
                password,
                *local,
            ]
        )
        == 0
    )
    client = Client(base_url=f"{runtime['url']}/xrpc")
    client.login(f"{name}.test", password, fetch_bsky_profile=False)
    return client


@pytest.fixture(scope="module")
def session(runtime: dict[str, Any]) -> dict[str, Any]:
    """A real client session: two accounts, posts, an image post, a follow, a delete."""
    alice, bob = new_account(runtime, "alice"), new_account(runtime, "bob")
    alice_did = alice.com.atproto.server.get_session().did
    bob_did = bob.com.atproto.server.get_session().did
    alice.send_post("hello from alice", profile_identify=alice_did)
    doomed = alice.send_post("deleted soon", profile_identify=alice_did)
    alice.send_image("with an image", tiny_png(), "a pixel", profile_identify=alice_did)
    # Client.follow needs the app view's profile; create the record directly.
    bob.app.bsky.graph.follow.create(
        bob_did,
        models.AppBskyGraphFollow.Record(subject=alice_did, created_at=bob.get_current_time_iso()),
    )
    alice.com.atproto.repo.delete_record(
        {"repo": alice_did, "collection": "app.bsky.feed.post", "rkey": doomed.uri.split("/")[-1]}
    )
    return {"alice": alice_did, "bob": bob_did}


def test_doctor_passes_locally_and_skips_what_needs_the_internet(
    runtime: dict[str, Any], session: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = doctor(runtime, capsys)
    assert code == 0, out
    for skipped in ("SKIPPED  dns", "SKIPPED  tls", "SKIPPED  email    ses", "SKIPPED  relay"):
        assert skipped in out
    for passed in ("health", "describeServer", "oauth protected resource", "robots", "allow-list"):
        assert f"PASS     http     {passed}" in out
    assert "PASS     http     /.well-known/atproto-did: alice.test -> " in out
    assert "PASS     firehose subscribeRepos" in out
    assert "PASS     backup   freshness" in out
    assert "FAIL" not in out


def test_the_relay_standin_verifies_every_op_of_a_client_session(
    runtime: dict[str, Any], relay: str, session: dict[str, Any]
) -> None:
    control(relay, "/xrpc/com.atproto.sync.requestCrawl", {"hostname": "localhost"})
    # The session's ops: 3 posts (one with an image), 1 follow, 1 delete.
    expected_ops = 5
    stats = wait_until(
        lambda: (s := control(relay, "/control/stats"))["opsIn"] >= expected_ops and s,
        "the relay stand-in to take the session's commits",
    )
    assert stats["opsIn"] == expected_ops, stats
    assert stats["opsVerified"] == stats["opsIn"], stats
    assert stats["errors"] == [], stats
    assert set(stats["repos"]) == {session["alice"], session["bob"]}
    forged = control(relay, "/control/forged-commit", {"did": session["alice"]})
    assert forged["rejected"] is True, forged
    assert "signature" in forged["error"].lower()


def test_doctor_relay_checks_pass_then_fail_with_the_fix(
    runtime: dict[str, Any], relay: str, session: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    control(relay, "/xrpc/com.atproto.sync.requestCrawl", {"hostname": "localhost"})
    wait_until(
        lambda: len(control(relay, "/control/stats")["repos"]) == 2, "both accounts at the relay"
    )
    code, out = doctor(runtime, capsys, "--relay", relay)
    assert code == 0, out
    assert "host status active" in out and "2 of 2 accounts current" in out

    control(relay, "/control", {"hostStatus": "throttled"})
    code, out = doctor(runtime, capsys, "--relay", relay)
    assert code == 1
    assert "FAIL     relay" in out and "host status throttled" in out
    assert "fix: ask the relay's operators" in out

    control(
        relay, "/control", {"hostStatus": "active", "accountStatus": {session["bob"]: "throttled"}}
    )
    code, out = doctor(runtime, capsys, "--relay", relay)
    assert code == 1 and f"{session['bob']}: account throttled at the relay" in out

    control(relay, "/control", {"accountStatus": {}, "paused": True})
    alice = Client(base_url=f"{runtime['url']}/xrpc")
    alice.login("alice.test", "doctor-pw-1", fetch_bsky_profile=False)
    alice.send_post("the relay misses this", profile_identify=session["alice"])
    code, out = doctor(runtime, capsys, "--relay", relay, "--max-relay-lag", "0s")
    assert code == 1, out
    assert f"{session['alice']}: PDS at rev" in out and "fix: request a crawl" in out
    control(relay, "/control", {"paused": False})


def test_doctor_fails_when_the_websocket_path_is_removed(
    runtime: dict[str, Any],
    session: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """An edge that forwards everything but the firehose's upgrade (a common proxy mistake)."""
    app = local_proxy.build_app(runtime["url"])

    @web.middleware
    async def no_websocket(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == SUBSCRIBE_REPOS_PATH:
            return web.Response(status=404, text="not here")
        return await handler(request)

    app.middlewares.append(no_websocket)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        state = {**runtime, "url": f"http://127.0.0.1:{port}"}
        state_file = tmp_path / "state.json"
        state_file.write_text(json.dumps(state))
        code, out = doctor({**runtime, "state_file": str(state_file)}, capsys)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
    assert code == 1
    assert "FAIL     firehose subscribeRepos: websocket upgrade refused: HTTP 404" in out
    assert "fix: the subscribeRepos websocket must pass the edge" in out


def test_doctor_fails_with_the_fix_when_the_edge_is_down(
    runtime: dict[str, Any], session: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    os.kill(int(runtime["pids"]["edge"]), signal.SIGTERM)
    code, out = doctor(runtime, capsys)
    assert code == 1
    assert "FAIL     http     health: no answer from" in out
    assert "fix: the PDS is not answering: `pds-aws status` and `pds-aws logs` show why" in out
