"""One writer per backup prefix, no loss window after a restart, and fail-closed restores:
the real sidecar and Litestream against the local AWS emulator.

The emulator (`pds_aws.local.aws_emulator`) is moto 5.2 behind a front end that serialises
every mutating request. moto implements S3's `If-None-Match: *` and `If-Match` on PutObject,
but checks and writes in two steps, not atomically under concurrent requests; serialised, a
conditional write behaves as on S3 (one of two racing writers gets 412).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from test_backup_sidecar import (
    PREFIX,
    REGION,
    WAIT_S,
    FakePds,
    Sidecar,
    account_dir,
    connect,
    snapshot,
)

from helpers import wait_until
from pds_aws.backup.fetch import max_txid
from pds_aws.backup.plan import StoredObject, read_generation

pytestmark = pytest.mark.integration


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Emulator:
    def __init__(self, url: str) -> None:
        self.url = url

    def s3(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    port = _free_port()
    state = tmp_path_factory.mktemp("emulator")
    log = (state / "emulator.log").open("wb")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    command = [sys.executable, "-m", "pds_aws.local.aws_emulator", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--state-dir", str(state / "state")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("emulator did not start") from None
            time.sleep(0.2)
    try:
        yield Emulator(url)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


_buckets = iter(range(1_000_000))


class Prefix:
    """One test's bucket on the emulator, and sidecars started on it."""

    def __init__(self, emulator: Emulator, root: Path) -> None:
        self.emulator = emulator
        self.root = root
        self.bucket = f"lease-{next(_buckets)}"
        emulator.s3().create_bucket(Bucket=self.bucket)

    def env(self, name: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            BACKUP_URL=f"s3://{self.bucket}/{PREFIX}",
            PDS_DATA_DIRECTORY=str(self.root / name),
            BACKUP_STATE_DIRECTORY=str(self.root / f"{name}.state"),
            AWS_REGION=REGION,
            AWS_ENDPOINT_URL_S3=self.emulator.url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            PDS_HEALTH_URL="none",
            BACKUP_LEASE_SECONDS="6",
        )
        return env

    def start(self, name: str) -> Sidecar:
        return Sidecar(self.env(name), self.root / f"{name}.log")

    def data(self, name: str) -> Path:
        return self.root / name

    def put(self, key: str, body: bytes) -> None:
        self.emulator.s3().put_object(Bucket=self.bucket, Key=f"{PREFIX}/{key}", Body=body)

    def get(self, key: str) -> bytes:
        return bytes(
            self.emulator.s3().get_object(Bucket=self.bucket, Key=f"{PREFIX}/{key}")["Body"].read()
        )


@pytest.fixture
def prefix(emulator: Emulator, tmp_path: Path) -> Prefix:
    return Prefix(emulator, tmp_path)


class Writer:
    """Posts into one account's store as fast as it can; remembers when each was acknowledged
    (committed)."""

    def __init__(self, data: Path, did: str) -> None:
        self.path = account_dir(data, did) / "store.sqlite"
        self.did = did
        self.acked: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conn = connect(self.path)
        n = 0
        while not self._stop.is_set():
            uri = f"at://{self.did}/app.bsky.feed.post/w{n}"
            conn.execute("INSERT INTO record VALUES (?, ?, ?)", (uri, f"c{n}", b"x"))
            self.acked[uri] = time.monotonic()
            n += 1
            self._stop.wait(0.02)
        conn.close()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def posts(data: Path, did: str) -> set[str]:
    import sqlite3

    conn = sqlite3.connect(account_dir(data, did) / "store.sqlite")
    try:
        return {r[0] for r in conn.execute("SELECT uri FROM record")}
    finally:
        conn.close()


def _first_boot_with_accounts(prefix: Prefix, accounts: int = 3) -> list[str]:
    first = prefix.start("first")
    first.wait_healthy()
    pds = FakePds(prefix.data("first"))
    dids = [pds.create_account(n) for n in range(accounts)]
    pds.close()
    assert first.stop() == 0, first.log()
    return dids


def test_two_sidecars_on_one_prefix_lose_nothing(prefix: Prefix) -> None:
    """A deploy: the new task's sidecar starts while the old one still serves writes. It
    restores only after the old one's final sync released the lease, and has every write
    the old one acknowledged."""
    dids = _first_boot_with_accounts(prefix)
    old = prefix.start("old")
    old.wait_healthy()
    writer = Writer(prefix.data("old"), dids[0])
    writer.start()
    new = prefix.start("new")
    wait_until(
        lambda: "waiting for the backup lease" in new.log(), WAIT_S, "the new sidecar to wait"
    )
    assert not new.healthy()
    assert not prefix.data("new").exists() or not any(prefix.data("new").iterdir())
    wait_until(lambda: len(writer.acked) > 50, WAIT_S, "writes on the old task")
    writer.stop()  # the writer runs on the old task until its SIGTERM
    assert old.stop() == 0, old.log()
    assert "lease released" in old.log()
    new.wait_healthy()
    assert set(writer.acked) <= posts(prefix.data("new"), dids[0])
    assert snapshot(prefix.data("new")) == snapshot(prefix.data("old"))
    assert new.stop() == 0, new.log()


def test_a_sidecar_that_loses_its_lease_exits_non_zero(prefix: Prefix) -> None:
    """Another holder took the lease (here: an operator overwrote it): the sidecar stops
    replicating at its next renewal and exits non-zero, so that ECS replaces the task."""
    holder = prefix.start("holder")
    holder.wait_healthy()
    prefix.put("LEASE", json.dumps({"holder": "someone else", "released": False}).encode())
    code = holder.wait_exit()
    assert code == 1, holder.log()
    assert "another sidecar took the backup lease" in holder.log()


def positions(prefix: Prefix) -> dict[str, int]:
    """Each database's position in the current generation (its highest LTX TXID)."""
    generation = prefix.get("CURRENT").decode().strip()
    objects = [
        StoredObject(o["Key"][len(PREFIX) + 1 :], o["Size"], o["LastModified"])
        for page in prefix.emulator.s3()
        .get_paginator("list_objects_v2")
        .paginate(Bucket=prefix.bucket, Prefix=f"{PREFIX}/")
        for o in page.get("Contents", [])
    ]
    contents = read_generation(objects, generation)
    return {rel: max_txid(db.ltx_files) for rel, db in contents.databases.items()}


def test_a_crash_right_after_a_restart_loses_nothing_acknowledged_a_second_before(
    prefix: Prefix,
) -> None:
    """The restarted sidecar continues the restored generation (no re-seed): Litestream resumes
    every restored database's replica at its restored position (backup/resume.py), so its
    first sync uploads nothing, and the sidecar turns healthy (the PDS may write) once that
    sync has run for every database. A SIGKILL shortly after the restart then loses no write
    acknowledged more than 1 s before it (Litestream's monitor and sync intervals are 250 ms
    each)."""
    dids = _first_boot_with_accounts(prefix, accounts=20)
    restored_from = positions(prefix)
    assert len(restored_from) == 23
    restarted = prefix.start("restarted")
    restarted.wait_healthy()  # t0: the PDS may write from now on
    assert "Litestream resumes 23 of 23 databases" in restarted.log()
    assert positions(prefix) == restored_from  # nothing written again
    writer = Writer(prefix.data("restarted"), dids[-1])
    writer.start()
    wait_until(lambda: len(writer.acked) > 100, WAIT_S, "writes after the restart")
    restarted.process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    restarted.wait_exit()
    writer.stop()
    after = prefix.start("after")  # waits for the crashed task's lease to expire
    after.wait_healthy()
    present = posts(prefix.data("after"), dids[-1])
    old_enough = {uri for uri, at in writer.acked.items() if at < killed_at - 1.0}
    assert old_enough, "the writer acknowledged nothing before the crash"
    assert old_enough <= present, sorted(old_enough - present)[:5]
    assert after.stop() == 0, after.log()


def test_an_empty_generation_that_is_not_a_first_boot_fails_closed(prefix: Prefix) -> None:
    """CURRENT names a generation that holds no database, but its ORIGIN records data: the
    sidecar must not start an empty PDS over it."""
    _first_boot_with_accounts(prefix)
    empty = "20261130T000000Z-0e0e"
    prefix.put(
        f"generations/{empty}/ORIGIN",
        json.dumps({"generation": empty, "reason": "restore-at", "databases": 4}).encode(),
    )
    s3 = prefix.emulator.s3()
    current = s3.get_object(Bucket=prefix.bucket, Key=f"{PREFIX}/CURRENT")["ETag"]
    s3.put_object(
        Bucket=prefix.bucket, Key=f"{PREFIX}/CURRENT", Body=f"{empty}\n".encode(), IfMatch=current
    )
    sidecar = prefix.start("data")
    assert sidecar.wait_exit() == 1
    assert "holds no database, but it is not a recorded first boot" in sidecar.log()
    assert not sidecar.healthy()
    assert not prefix.data("data").exists() or not any(prefix.data("data").iterdir())


def test_an_object_key_outside_the_data_directory_fails_closed(prefix: Prefix) -> None:
    """A key file object whose path is absolute would be written outside the data directory
    (`data_dir / "/etc/x"` is `/etc/x`): refused, nothing restored."""
    _first_boot_with_accounts(prefix)
    generation = prefix.get("CURRENT").decode().strip()
    target = prefix.root / "outside" / "planted"
    prefix.put(f"generations/{generation}/files/{target}", b"not ours")
    sidecar = prefix.start("data")
    assert sidecar.wait_exit() == 1
    assert "would be written outside the data directory" in sidecar.log()
    assert not target.exists()
    assert not sidecar.healthy()
