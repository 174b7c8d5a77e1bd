"""No loss window after a restart: the local runtime (the real PDS, the backup sidecar with
the real Litestream, the AWS emulator as S3) is restarted, a real `atproto` client posts from
the moment the PDS is ready again (t0), and the task crashes (SIGKILL of the PDS and the
sidecar, with Litestream) right after. The next task's restore must hold every post that was
acknowledged more than 1 s before the crash (Litestream's monitor and sync intervals are
250 ms each; guides/BACKUP.md, "Start: Litestream, then healthy").

The AWS emulator outlives the crash, as S3 does, and is then stopped cleanly.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from atproto import Client, models

from helpers import wait_until
from pds_aws.config import Config
from pds_aws.local.runtime import LocalRuntime

pytestmark = pytest.mark.integration

ACCOUNTS = ("alice", "bob", "carol")
PASSWORD = "restart-pass-1234"
# Acknowledged posts (all writers together) before the crash: enough that the first ones are
# well over 1 s old when it comes, few enough that it comes within seconds of t0.
POSTS_BEFORE_CRASH = 60
TASK_CONTAINERS = ("pds", "backup")
WAIT_S = 120.0


def login(url: str, handle: str) -> Client:
    client = Client(url)
    client.login(handle, PASSWORD, fetch_bsky_profile=False)
    return client


def create_accounts(url: str, admin_password: str) -> dict[str, str]:
    invite = httpx.post(
        f"{url}/xrpc/com.atproto.server.createInviteCode",
        json={"useCount": len(ACCOUNTS)},
        auth=("admin", admin_password),
        timeout=30,
    )
    assert invite.status_code == 200, invite.text
    dids: dict[str, str] = {}
    for name in ACCOUNTS:
        created = Client(url).com.atproto.server.create_account(
            models.ComAtprotoServerCreateAccount.Data(
                handle=f"{name}.test",
                email=f"{name}@example.com",
                password=PASSWORD,
                invite_code=invite.json()["code"],
            )
        )
        dids[name] = created.did
    return dids


class Poster:
    """Posts as one account as fast as the PDS acknowledges; remembers when each post was
    acknowledged (the PDS answered with its URI)."""

    def __init__(self, url: str, name: str, did: str, acked: dict[str, float]) -> None:
        self.client = login(url, f"{name}.test")
        self.did = did
        self.acked = acked
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self.stopped.is_set():
            try:
                post = self.client.send_post(f"after the restart {n}", profile_identify=self.did)
            except Exception:  # the crash: no answer, so not acknowledged
                return
            self.acked[post.uri] = time.monotonic()
            n += 1


def posts_of(client: Client, did: str) -> set[str]:
    uris: set[str] = set()
    cursor = None
    while True:
        page = client.com.atproto.repo.list_records(
            {"repo": did, "collection": "app.bsky.feed.post", "limit": 100, "cursor": cursor}
        )
        uris |= {r.uri for r in page.records}
        cursor = page.cursor
        if not page.records or cursor is None:
            return uris


def test_a_crash_right_after_a_restart_loses_nothing_acknowledged_a_second_before_it(
    tmp_path: Path, example_config: Config, stack_template: dict[str, Any]
) -> None:
    config, template = example_config, stack_template
    # A first boot with a few accounts, then a clean stop (its final sync).
    runtime = LocalRuntime(tmp_path, config, template=template)
    state = runtime.start()
    try:
        dids = create_accounts(state.url, state.admin_password)
        for name, did in dids.items():
            login(state.url, f"{name}.test").send_post("before the restart", profile_identify=did)
    finally:
        runtime.stop()
    assert runtime.exit_codes["backup"] == 0

    # The restart: t0 is the moment the PDS is ready (start() returns); writers post from it.
    runtime = LocalRuntime(tmp_path, config, template=template)
    state = runtime.start()
    acked: dict[str, dict[str, float]] = {name: {} for name in dids}
    try:
        posters = [Poster(state.url, n, dids[n], acked[n]) for n in dids]
        for poster in posters:
            poster.thread.start()
        # Enough posts, and the first of them more than 1 s old: on a fast machine all of them
        # can be acknowledged within one second, and the test would then check nothing.
        wait_until(
            lambda: (
                sum(len(a) for a in acked.values()) >= POSTS_BEFORE_CRASH
                and min(t for a in acked.values() for t in a.values()) < time.monotonic() - 2.0
            ),
            WAIT_S,
            f"{POSTS_BEFORE_CRASH} acknowledged posts after the restart, the first 2 s old",
            every=0.05,
        )
        # The crash: the task's containers (Litestream dies with its sidecar).
        for name in TASK_CONTAINERS:
            runtime.processes[name].kill_group()
        killed_at = time.monotonic()
        for name in TASK_CONTAINERS:
            runtime.processes.pop(name).kill()
        for poster in posters:
            poster.stopped.set()
            poster.thread.join(timeout=60)
    finally:
        runtime.stop(quiet=True)

    # The next task restores (once the crashed sidecar's lease expired).
    runtime = LocalRuntime(tmp_path, config, template=template)
    state = runtime.start()
    try:
        missing: dict[str, list[str]] = {}
        old_enough = 0
        for name, did in dids.items():
            present = posts_of(login(state.url, f"{name}.test"), did)
            old = {uri for uri, at in acked[name].items() if at < killed_at - 1.0}
            old_enough += len(old)
            if old - present:
                missing[name] = sorted(old - present)
        assert old_enough, "no post was acknowledged more than 1 s before the crash"
        assert not missing, {
            name: f"{len(uris)} of {len([a for a in acked[name].values() if a < killed_at - 1])}"
            for name, uris in missing.items()
        }
    finally:
        runtime.stop()
    assert runtime.exit_codes["backup"] == 0
