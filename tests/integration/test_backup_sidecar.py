"""The backup sidecar against the real Litestream binary and moto server as S3.

The PDS is simulated by SQLite databases in WAL mode with a busy timeout, laid out as the PDS
lays out its data directory (top-level databases, actors/<xx>/<did>/store.sqlite + key,
reserved keys); the real PDS with the sidecar is exercised by the local-runtime tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from helpers import free_port, wait_until
from pds_aws.procs import pid_alive

pytestmark = pytest.mark.integration

VENV_BIN = Path(sys.executable).parent
MOTO_SERVER = VENV_BIN / "moto_server"
PREFIX = "pds"
REGION = "us-east-1"
TOP_LEVEL = ("account.sqlite", "sequencer.sqlite", "did_cache.sqlite")
WAIT_S = 60.0
RESERVED_KEYS = 3  # in each populated backup


# ------------------------------------------------------------------------------------------
# moto server


@dataclass
class Moto:
    url: str
    process: subprocess.Popen[bytes]

    def s3(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    process = subprocess.Popen(
        [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"moto server exited with code {process.returncode}")
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
        except OSError:
            return False
        return True

    try:
        wait_until(answers, WAIT_S, "moto server to answer")
    except AssertionError:
        process.kill()
        raise
    server = Moto(url, process)
    try:
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


# ------------------------------------------------------------------------------------------
# The sidecar as a process


def sidecar_env(
    moto: Moto, bucket: str, data_dir: Path, state_dir: Path, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") or k == "AWS_CA_BUNDLE"}
    # AWS_CA_BUNDLE stays set on purpose: this machine sets it, and the sidecar must remove
    # it from Litestream's environment.
    env.update(
        BACKUP_URL=f"s3://{bucket}/{PREFIX}",
        PDS_DATA_DIRECTORY=str(data_dir),
        BACKUP_STATE_DIRECTORY=str(state_dir),
        AWS_REGION=REGION,
        AWS_ENDPOINT_URL_S3=moto.url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        # These tests stand in for the PDS (no PDS runs beside the sidecar): replicate right
        # after the restore. The tests of waiting for the PDS set a URL of their own.
        PDS_HEALTH_URL="none",
        # A SIGKILLed sidecar's lease expires in seconds, not in the 240 s of a task.
        BACKUP_LEASE_SECONDS="6",
    )
    env.update(extra)
    return env


def backup_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pds_aws.backup", *args]


@dataclass
class Sidecar:
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            backup_command("run"), env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def healthy(self) -> bool:
        done = subprocess.run(
            backup_command("health"), env=self.env, capture_output=True, timeout=30, check=False
        )
        return done.returncode == 0

    def wait_healthy(self) -> None:
        def running_and_healthy() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"sidecar exited {self.process.returncode}")
            return self.healthy()

        try:
            wait_until(running_and_healthy, WAIT_S, "the sidecar to become healthy", every=0.3)
        except AssertionError as failure:
            raise AssertionError(f"{failure}:\n{self.log()}") from None

    def wait_exit(self) -> int:
        try:
            return self.process.wait(timeout=WAIT_S * 2)
        finally:
            self._log.close()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait_exit()

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")


@dataclass
class Case:
    """One test's backup bucket (its own: moto lists a bucket in time linear in its size)
    and directories."""

    moto: Moto
    bucket: str
    root: Path

    def __post_init__(self) -> None:
        self.moto.s3().create_bucket(Bucket=self.bucket)

    def env(self, name: str, **extra: str) -> dict[str, str]:
        return sidecar_env(
            self.moto, self.bucket, self.root / name, self.root / f"{name}.state", **extra
        )

    def start(self, name: str, **extra: str) -> Sidecar:
        return Sidecar(self.env(name, **extra), self.root / f"{name}.log")

    def data(self, name: str) -> Path:
        return self.root / name

    def restore(self, name: str) -> tuple[dict[str, Any], str]:
        """A sidecar started on the empty directory `name`, stopped once it has restored:
        what it restored (a snapshot) and its log."""
        sidecar = self.start(name)
        sidecar.wait_healthy()
        restored = snapshot(self.data(name))
        assert sidecar.stop() == 0, sidecar.log()
        return restored, sidecar.log()

    def cli(self, *args: str, name: str = "cli", **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            backup_command(*args),
            env=self.env(name, **extra),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def objects(self) -> dict[str, str]:
        """Every object of the prefix but the lease, with its ETag: 'the backup is untouched'
        compares these."""
        s3 = self.moto.s3()
        out: dict[str, str] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{PREFIX}/"
        ):
            for item in page.get("Contents", []):
                # The lease is the one object every start writes (taken, then released),
                # also one that fails closed: the backup itself is everything else.
                if item["Key"] != f"{PREFIX}/LEASE":
                    out[item["Key"]] = item["ETag"]
        return out


_case_counter = iter(range(1_000_000))


@pytest.fixture
def case(moto: Moto, tmp_path: Path) -> Case:
    return Case(moto, f"case-{next(_case_counter)}", tmp_path)


def copy_backup(moto: Moto, source: str, dest: str) -> None:
    s3 = moto.s3()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=source):
        for item in page.get("Contents", []):
            key = item["Key"]
            s3.copy_object(Bucket=dest, Key=key, CopySource={"Bucket": source, "Key": key})


# ------------------------------------------------------------------------------------------
# A simulated PDS data directory


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA journal_mode = WAL")
    # As the PDS runs beside Litestream: Litestream owns checkpoints.
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    return conn


def did_of(n: int) -> str:
    return f"did:plc:{hashlib.sha256(f'acct{n}'.encode()).hexdigest()[:24]}"


def account_dir(data: Path, did: str) -> Path:
    return data / "actors" / hashlib.sha256(did.encode()).hexdigest()[:2] / did


class FakePds:
    """Writes what the PDS writes, in the PDS's order: store + key first, then the actor row."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.account_db = connect(data / "account.sqlite")
        self.account_db.execute(
            "CREATE TABLE IF NOT EXISTS actor (did TEXT PRIMARY KEY, handle TEXT, createdAt TEXT)"
        )
        for name in ("sequencer.sqlite", "did_cache.sqlite"):
            with_conn = connect(data / name)
            with_conn.execute("CREATE TABLE IF NOT EXISTS event (seq INTEGER PRIMARY KEY, body)")
            with_conn.close()

    def create_account(self, n: int, records: int = 3) -> str:
        did = did_of(n)
        folder = account_dir(self.data, did)
        store = connect(folder / "store.sqlite")
        store.execute("CREATE TABLE record (uri TEXT PRIMARY KEY, cid TEXT, content BLOB)")
        for i in range(records):
            store.execute(
                "INSERT INTO record VALUES (?, ?, ?)",
                (f"at://{did}/app.bsky.feed.post/{i}", f"cid{i}", os.urandom(64)),
            )
        store.close()
        (folder / "key").write_bytes(os.urandom(32))
        self.account_db.execute(
            "INSERT INTO actor VALUES (?, ?, ?)", (did, f"u{n}.test", datetime.now(UTC).isoformat())
        )
        seq = connect(self.data / "sequencer.sqlite")
        seq.execute("INSERT INTO event (body) VALUES (?)", (f"#identity {did}",))
        seq.close()
        return did

    def delete_account(self, did: str) -> None:
        self.account_db.execute("DELETE FROM actor WHERE did = ?", (did,))
        shutil.rmtree(account_dir(self.data, did))

    def reserve_key(self, name: str) -> None:
        folder = self.data / "actors" / "reserved_keys"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(os.urandom(32))

    def post(self, did: str, i: int) -> None:
        store = connect(account_dir(self.data, did) / "store.sqlite")
        store.execute(
            "INSERT INTO record VALUES (?, ?, ?)",
            (f"at://{did}/app.bsky.feed.post/p{i}", f"cidp{i}", os.urandom(64)),
        )
        store.close()

    def close(self) -> None:
        self.account_db.close()


def snapshot(data: Path) -> dict[str, Any]:
    """Every row of every database and every plain file's bytes, Litestream's tables aside."""
    out: dict[str, Any] = {}
    for path in sorted(data.rglob("*")):
        rel = path.relative_to(data).as_posix()
        if any(part.startswith(".") for part in path.relative_to(data).parts):
            continue
        if not path.is_file() or rel.endswith(("-wal", "-shm")):
            continue
        if rel.endswith(".sqlite"):
            conn = sqlite3.connect(path, timeout=30)
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE '_litestream%' ORDER BY name"
                )
            ]
            out[rel] = {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables}
            assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok", rel
            conn.close()
        else:
            out[rel] = path.read_bytes()
    return out


def wait_replicated(case: Case, data: Path, did: str) -> None:
    """Wait until the backup of the account's store holds every commit made to it so far.

    S3 times have whole seconds: an upload stored two seconds after now came after Litestream
    noticed the commits made until now (it checks every 250 ms), and Litestream uploads in
    order. Filler rows keep uploads coming until then; their URIs are no post's.
    """
    after = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    filler = connect(account_dir(data, did) / "store.sqlite")

    def replicated() -> bool:
        filler.execute(
            "INSERT INTO record VALUES (?, ?, ?)", (f"at://{did}/filler/{time.time_ns()}", "", b"")
        )
        s3 = case.moto.s3()
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=case.bucket, Prefix=PREFIX)
        return any(
            item["LastModified"] >= after
            for page in pages
            for item in page.get("Contents", [])
            if f"{did}/store.sqlite/" in item["Key"]
        )

    try:
        wait_until(replicated, WAIT_S, f"the commits to {did}'s store in the backup")
    finally:
        filler.close()


# ------------------------------------------------------------------------------------------
# A populated backup, made once, copied into each test's own bucket


@dataclass
class Populated:
    bucket: str
    expected: dict[str, Any]
    dids: list[str]


def _populate(moto: Moto, root: Path, name: str, accounts: int) -> Populated:
    case = Case(moto, name, root)
    sidecar = case.start("data")
    sidecar.wait_healthy()
    pds = FakePds(case.data("data"))
    dids = [pds.create_account(n) for n in range(accounts)]
    for n in range(RESERVED_KEYS):
        pds.reserve_key(f"did:key:reserved{n}")
    for i, did in enumerate(dids[:10]):
        pds.post(did, i)
    pds.close()
    assert sidecar.stop() == 0, sidecar.log()
    return Populated(case.bucket, snapshot(case.data("data")), dids)


@pytest.fixture(scope="module")
def populated(moto: Moto, tmp_path_factory: pytest.TempPathFactory) -> Populated:
    """3 top-level databases + 50 accounts + 3 reserved keys, written while replicating."""
    return _populate(moto, tmp_path_factory.mktemp("populated"), "populated", 50)


@pytest.fixture(scope="module")
def small(moto: Moto, tmp_path_factory: pytest.TempPathFactory) -> Populated:
    """The same shape with 12 accounts: enough for the cases that do not count to 50."""
    return _populate(moto, tmp_path_factory.mktemp("small"), "small", 12)


def populated_copy(case: Case, populated: Populated) -> None:
    copy_backup(case.moto, populated.bucket, case.bucket)


# ------------------------------------------------------------------------------------------
# Tests


def test_round_trip_restores_every_row_and_key_byte(case: Case, populated: Populated) -> None:
    populated_copy(case, populated)
    accounts = len(populated.dids)
    assert len([k for k in populated.expected if k.endswith("/key")]) == accounts
    assert len([k for k in populated.expected if "reserved_keys" in k]) == RESERVED_KEYS

    restored, log = case.restore("restored")
    assert restored == populated.expected
    assert f"restored {accounts} accounts" in log
    assert f"restored {accounts + len(TOP_LEVEL)} databases" in log
    assert "ERROR backup" not in log


def test_key_files_come_from_files_unless_their_object_changed_since(
    case: Case, small: Populated
) -> None:
    """FILES (backup/bundle.py) gives the key files in one GET; a key object written after it
    (a crash between the two uploads) or an unreadable FILES falls back to the object."""
    populated_copy(case, small)
    plain = len(small.dids) + RESERVED_KEYS
    restored, log = case.restore("first")
    assert restored == small.expected
    assert f"({plain} from generations/" in log and "/FILES, 0 fetched one by one)" in log

    s3 = case.moto.s3()
    (key,) = [k for k in case.objects() if k.endswith(f"{small.dids[3]}/key")]
    s3.put_object(Bucket=case.bucket, Key=key, Body=b"written after FILES")
    restored, log = case.restore("second")
    rel = key.split("/files/", 1)[1]
    assert restored == {**small.expected, rel: b"written after FILES"}
    assert f"({plain - 1} from generations/" in log and "/FILES, 1 fetched one by one)" in log
    # That start wrote FILES again, with the key as its object is now.
    restored, log = case.restore("third")
    assert restored[rel] == b"written after FILES"
    assert f"({plain} from generations/" in log

    (files,) = [k for k in case.objects() if k.endswith("/FILES")]
    s3.put_object(Bucket=case.bucket, Key=files, Body=b"{not json")
    restored, log = case.restore("fourth")
    assert restored == {**small.expected, rel: b"written after FILES"}
    assert "(0 from generations/" in log and f"/FILES, {plain} fetched one by one)" in log


def test_account_created_after_restore_is_replicated_and_restored(
    case: Case, small: Populated
) -> None:
    populated_copy(case, small)
    first = case.start("first")
    first.wait_healthy()
    pds = FakePds(case.data("first"))
    new_did = pds.create_account(1000)
    pds.post(small.dids[0], 999)
    pds.close()
    # The key is uploaded within seconds of appearing, while the sidecar runs.
    wait_until(
        lambda: any(k.endswith(f"{new_did}/key") for k in case.objects()),
        WAIT_S,
        "the new account's key in the backup",
    )
    expected = snapshot(case.data("first"))
    assert first.stop() == 0, first.log()

    restored, _ = case.restore("second")
    assert restored == expected
    assert any(rel.endswith(f"{new_did}/store.sqlite") for rel in restored)


def test_deleted_account_is_not_restored(case: Case, small: Populated) -> None:
    populated_copy(case, small)
    first = case.start("first")
    first.wait_healthy()
    pds = FakePds(case.data("first"))
    gone = small.dids[3]
    pds.delete_account(gone)
    pds.close()
    expected = snapshot(case.data("first"))
    assert first.stop() == 0, first.log()

    restored, log = case.restore("second")
    assert not account_dir(case.data("second"), gone).exists()
    assert restored == expected
    assert "1 deleted accounts skipped" in log


def _assert_failed_closed(case: Case, sidecar: Sidecar, before: dict[str, str], words: str) -> str:
    code = sidecar.wait_exit()
    log = sidecar.log()
    assert code != 0, log
    assert not sidecar.healthy()
    error_lines = [line for line in log.splitlines() if line.startswith("ERROR")]
    assert any(words in line for line in error_lines), log
    assert case.objects() == before, "the backup changed"
    data = sidecar.env["PDS_DATA_DIRECTORY"]
    leftovers = [p for p in Path(data).rglob("*")] if Path(data).exists() else []
    assert leftovers == [], f"the data directory is not empty: {leftovers[:5]}"
    return log


def test_fails_closed_when_store_is_unreachable(case: Case, small: Populated) -> None:
    populated_copy(case, small)
    before = case.objects()
    sidecar = case.start("data", AWS_ENDPOINT_URL_S3=f"http://127.0.0.1:{free_port()}")
    _assert_failed_closed(case, sidecar, before, "unreachable")


def test_fails_closed_on_a_corrupted_object(case: Case, small: Populated) -> None:
    populated_copy(case, small)
    s3 = case.moto.s3()
    victim = did_of(7)
    ltx = sorted(k for k in case.objects() if f"{victim}/store.sqlite/" in k and k.endswith(".ltx"))
    assert ltx
    for key in ltx:  # every copy of its pages, whichever level Litestream reads
        body = bytearray(s3.get_object(Bucket=case.bucket, Key=key)["Body"].read())
        body[len(body) // 2 :] = os.urandom(len(body) - len(body) // 2)
        s3.put_object(Bucket=case.bucket, Key=key, Body=bytes(body))
    before = case.objects()
    sidecar = case.start("data")
    log = _assert_failed_closed(case, sidecar, before, victim)
    assert "restore failed" in log
    # The restore of every database in one Litestream process failed without naming the
    # database; the sidecar restored them one by one, and the ERROR above names it.
    assert "one by one instead" in log


def test_fails_closed_when_an_account_key_is_missing(case: Case, small: Populated) -> None:
    populated_copy(case, small)
    victim = did_of(11)
    (key,) = [k for k in case.objects() if k.endswith(f"{victim}/key")]
    case.moto.s3().delete_object(Bucket=case.bucket, Key=key)
    before = case.objects()
    sidecar = case.start("data")
    _assert_failed_closed(case, sidecar, before, f"account {victim} has no key file")

    drill = case.cli("drill")
    assert drill.returncode != 0
    summary = json.loads(drill.stdout.strip().splitlines()[-1])
    assert summary["ok"] is False
    assert any(victim in p for p in summary["problems"])


def test_fails_closed_when_the_bucket_is_missing(case: Case) -> None:
    env_extra = {"BACKUP_URL": f"s3://no-such-bucket-{os.getpid()}/pds"}
    sidecar = case.start("data", **env_extra)
    code = sidecar.wait_exit()
    log = sidecar.log()
    assert code != 0
    assert not sidecar.healthy()
    assert any(
        line.startswith("ERROR") and "does not exist" in line for line in log.splitlines()
    ), log
    assert f"no-such-bucket-{os.getpid()}" not in [
        b["Name"] for b in case.moto.s3().list_buckets()["Buckets"]
    ]


def test_refuses_a_non_empty_data_directory_over_an_existing_backup(
    case: Case, small: Populated
) -> None:
    populated_copy(case, small)
    before = case.objects()
    fresh = FakePds(case.data("data"))  # a fresh database where a restore should go
    fresh.close()
    sidecar = case.start("data")
    code = sidecar.wait_exit()
    assert code != 0
    assert any(
        line.startswith("ERROR") and "not empty" in line for line in sidecar.log().splitlines()
    )
    assert case.objects() == before


def test_sigterm_during_steady_writes_loses_no_acknowledged_write(case: Case) -> None:
    sidecar = case.start("data")
    sidecar.wait_healthy()
    pds = FakePds(case.data("data"))
    did = pds.create_account(1)
    pds.close()
    acknowledged: list[int] = []
    stop = threading.Event()

    def writer() -> None:
        conn = connect(account_dir(case.data("data"), did) / "store.sqlite")
        i = 0
        while not stop.is_set():
            try:
                conn.execute(
                    "INSERT INTO record VALUES (?, ?, ?)", (f"at://{did}/w/{i}", str(i), b"x")
                )
            except sqlite3.Error:
                break
            acknowledged.append(i)
            i += 1
            time.sleep(0.005)  # a steady rate of writes, as a busy PDS makes (not a wait)
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    wait_until(lambda: len(acknowledged) > 300, WAIT_S, "300 commits")
    sidecar.process.send_signal(signal.SIGTERM)
    before_sigterm = len(acknowledged)
    code = sidecar.wait_exit()
    stop.set()
    thread.join()
    assert code == 0, sidecar.log()

    restore = case.start("restored")
    restore.wait_healthy()
    conn = sqlite3.connect(account_dir(case.data("restored"), did) / "store.sqlite")
    uris = {r[0] for r in conn.execute("SELECT uri FROM record")}
    conn.close()
    assert restore.stop() == 0
    missing = [i for i in range(before_sigterm) if f"at://{did}/w/{i}" not in uris]
    assert missing == []


def test_restore_at_goes_back_and_latest_comes_back(case: Case) -> None:
    sidecar = case.start("data")
    sidecar.wait_healthy()
    pds = FakePds(case.data("data"))
    early = pds.create_account(1)
    for i in range(5):
        pds.post(early, i)
    wait_replicated(case, case.data("data"), early)  # every early commit is before T
    moment = datetime.now(UTC)
    # Whatever comes next must be stored after T, in S3's whole seconds too (the sidecar reads
    # a database whose newest object is not after T as it is now).
    next_second = moment.replace(microsecond=0) + timedelta(seconds=1)
    wait_until(lambda: datetime.now(UTC) >= next_second, 5, "the second after T")
    late = pds.create_account(2)
    for i in range(5, 10):
        pds.post(early, i)
    pds.close()
    wait_until(
        lambda: any(k.endswith(f"{late}/key") for k in case.objects()), WAIT_S, "late key upload"
    )
    assert sidecar.stop() == 0, sidecar.log()
    original = json.loads(case.cli("status").stdout)["current_generation"]

    back = case.cli("restore-at", moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    assert back.returncode == 0, back.stderr
    result = json.loads(back.stdout.strip().splitlines()[-1])
    assert result["previous"] == original and result["generation"] != original
    # It says which moment it reached: never after the one asked (same ISO format).
    assert result["restored_to"] <= result["at"]
    assert result["databases_behind"] >= 0

    status = json.loads(case.cli("status").stdout)
    assert status["current_generation"] == result["generation"]
    assert original in status["generations"]

    at_t = case.start("at_t")
    at_t.wait_healthy()
    posts = _post_uris(case.data("at_t"), early)
    assert at_t.stop() == 0, at_t.log()
    assert {f"at://{early}/app.bsky.feed.post/p{i}" for i in range(5)} <= posts
    assert not any(f"/p{i}" in uri for uri in posts for i in range(5, 10))
    assert not account_dir(case.data("at_t"), late).exists()

    forward = case.cli("restore-at", "latest", "--generation", original)
    assert forward.returncode == 0, forward.stderr
    latest = case.start("latest")
    latest.wait_healthy()
    posts = _post_uris(case.data("latest"), early)
    assert latest.stop() == 0
    assert {f"at://{early}/app.bsky.feed.post/p{i}" for i in range(10)} <= posts
    assert (account_dir(case.data("latest"), late) / "key").exists()


def _post_uris(data: Path, did: str) -> set[str]:
    conn = sqlite3.connect(account_dir(data, did) / "store.sqlite")
    try:
        return {r[0] for r in conn.execute("SELECT uri FROM record")}
    finally:
        conn.close()


def test_drill_and_status_report_a_healthy_backup(case: Case, small: Populated) -> None:
    populated_copy(case, small)
    drill = case.cli("drill")
    assert drill.returncode == 0, drill.stderr
    summary = json.loads(drill.stdout.strip().splitlines()[-1])
    assert summary["ok"] is True
    accounts = len(small.dids)
    assert summary["accounts"] == accounts
    assert summary["databases"] == accounts + len(TOP_LEVEL)
    assert summary["key_files"] == accounts
    assert summary["bytes"] > 0
    assert summary["problems"] == []

    status = case.cli("status")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["database_count"] == accounts + len(TOP_LEVEL)
    assert set(TOP_LEVEL) <= set(report["databases"])
    assert report["oldest_change"] <= report["newest_change"]


def test_first_boot_on_an_empty_prefix_is_healthy_with_an_empty_directory(case: Case) -> None:
    sidecar = case.start("data")
    sidecar.wait_healthy()
    assert [p.name for p in case.data("data").iterdir()] == []
    assert sidecar.stop() == 0
    assert f"{PREFIX}/CURRENT" in case.objects()


def test_first_boot_adopts_an_existing_data_directory(case: Case) -> None:
    """Migration: PDS files on disk and an empty backup: they are replicated as they are."""
    pds = FakePds(case.data("data"))
    for n in range(3):
        pds.create_account(n)
    pds.close()
    expected = snapshot(case.data("data"))
    sidecar = case.start("data")
    sidecar.wait_healthy()
    assert sidecar.stop() == 0, sidecar.log()
    assert "adopting" in sidecar.log()
    assert case.restore("restored")[0] == expected


def test_a_crashed_task_restores_what_was_replicated(case: Case, small: Populated) -> None:
    """SIGKILL (a crashed task): Litestream dies with the sidecar, the next start restores."""
    populated_copy(case, small)
    first = case.start("first")
    first.wait_healthy()
    did = small.dids[0]
    pds = FakePds(case.data("first"))
    for i in range(100, 120):
        pds.post(did, i)
    pds.close()
    wait_replicated(case, case.data("first"), did)
    marker = json.loads((case.root / "first.state" / "healthy.json").read_text())
    first.process.kill()
    assert first.wait_exit() != 0

    wait_until(
        lambda: not pid_alive(marker["litestream_pid"]),
        WAIT_S,
        "Litestream to die with the sidecar",
    )

    second = case.start("second")
    second.wait_healthy()
    posts = _post_uris(case.data("second"), did)
    assert second.stop() == 0, second.log()
    assert {f"at://{did}/app.bsky.feed.post/p{i}" for i in range(100, 120)} <= posts


# ------------------------------------------------------------------------------------------
# Waiting for the PDS before replicating (PDS_HEALTH_URL)


class PdsHealthStandIn:
    """The PDS's health URL: 503 until `listen()`, as the PDS migrates its databases inside
    PDS.create before it serves anything; 200 afterwards."""

    def __init__(self) -> None:
        self.answering = threading.Event()
        self.refused = 0  # probes answered 503
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if stand_in.answering.is_set():
                    self.send_response(200)
                else:
                    stand_in.refused += 1
                    self.send_response(503)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/xrpc/_health"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def listen(self) -> None:
        self.answering.set()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pds_health() -> Iterator[PdsHealthStandIn]:
    stand_in = PdsHealthStandIn()
    try:
        yield stand_in
    finally:
        stand_in.close()


def health_line(sidecar: Sidecar) -> str:
    done = subprocess.run(
        backup_command("health"), env=sidecar.env, capture_output=True, text=True, timeout=30
    )
    return done.stdout.strip()


def litestream_traces(data: Path) -> list[str]:
    """What Litestream leaves once it has opened a database: its tables and its meta dir."""
    traces = [p.name for p in data.rglob(".*-litestream")]
    for path in sorted(data.rglob("*.sqlite")):
        conn = sqlite3.connect(path, timeout=30)
        traces += [
            f"{path.name}:{r[0]}"
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE name LIKE '\\_litestream%' ESCAPE '\\'"
            )
        ]
        conn.close()
    return traces


def backed_up_databases(case: Case) -> set[str]:
    """The file names of the databases `status` lists in the current generation."""
    done = case.cli("status")
    assert done.returncode == 0, done.stderr
    return {rel.split("/")[-1] for rel in json.loads(done.stdout.splitlines()[-1])["databases"]}


def test_replication_starts_only_once_the_pds_answers(
    case: Case, pds_health: PdsHealthStandIn
) -> None:
    """First boot: the PDS creates and migrates its databases before it answers its health
    URL; Litestream must not touch them until then (the PDS uses busy timeout 0)."""
    sidecar = case.start("data", PDS_HEALTH_URL=pds_health.url)
    sidecar.wait_healthy()  # healthy before replicating: the PDS container may start
    assert health_line(sidecar).startswith("healthy: restored, waiting for the PDS")
    pds = FakePds(case.data("data"))  # the PDS's first-boot migrations
    did = pds.create_account(1)
    key = f"{account_dir(case.data('data'), did).relative_to(case.data('data'))}/key"
    # Key files do not wait for the PDS: once this one is in the backup, the sidecar has been
    # looping for a while with the databases on disk.
    wait_until(lambda: any(k.endswith(key) for k in case.objects()), WAIT_S, "the key file upload")
    # Three more refused probes, each a point where the sidecar could have started Litestream
    # (which opens a new database within ~250 ms), half a second apart.
    refused = pds_health.refused
    wait_until(lambda: pds_health.refused >= refused + 3, WAIT_S, "three more refused probes")
    assert litestream_traces(case.data("data")) == []
    assert backed_up_databases(case) == set()
    assert "healthy: restored, waiting for the PDS" in health_line(sidecar)

    pds_health.listen()
    wait_until(
        lambda: health_line(sidecar).startswith("healthy: replicating"),
        WAIT_S,
        "Litestream to start",
    )
    pds.post(did, 1)  # a write made after the PDS answers
    pds.close()
    wait_until(
        lambda: {"account.sqlite", "store.sqlite"} <= backed_up_databases(case),
        WAIT_S,
        "the databases in the backup while running",
    )
    # The check above can see Litestream's traces: now that it runs, they are there.
    assert litestream_traces(case.data("data")) != []
    expected = snapshot(case.data("data"))
    assert sidecar.stop() == 0, sidecar.log()
    assert "the PDS answers" in sidecar.log()

    assert case.restore("restored")[0] == expected
    assert f"at://{did}/app.bsky.feed.post/p1" in _post_uris(case.data("restored"), did)


def test_sigterm_while_waiting_for_the_pds_keeps_what_the_pds_wrote(case: Case) -> None:
    """First boot, and ECS stops the PDS first: a PDS that created its databases (its
    migrations, or a write acknowledged between two health probes) and stopped before the
    sidecar saw it answer loses nothing."""
    nobody = f"http://127.0.0.1:{free_port()}/xrpc/_health"  # the PDS never listens
    sidecar = case.start("data", PDS_HEALTH_URL=nobody)
    sidecar.wait_healthy()
    assert health_line(sidecar).startswith("healthy: restored, waiting for the PDS")
    pds = FakePds(case.data("data"))
    did = pds.create_account(1)
    pds.post(did, 7)
    pds.close()
    expected = snapshot(case.data("data"))
    assert sidecar.stop() == 0, sidecar.log()

    assert case.restore("restored")[0] == expected


def test_a_restart_does_not_wait_for_the_pds_and_continues_the_generation(
    case: Case, small: Populated
) -> None:
    """Restored databases: Litestream starts right after the restore and the sidecar is
    healthy once it replicates them, without waiting for the PDS (which then never meets
    Litestream's first writes to them). A PDS that never starts (a crash loop) leaves the
    generation as it was: the stop makes no new generation."""
    populated_copy(case, small)
    before = read_current_object(case)
    nobody = f"http://127.0.0.1:{free_port()}/xrpc/_health"
    sidecar = case.start("data", PDS_HEALTH_URL=nobody)
    sidecar.wait_healthy()
    assert health_line(sidecar).startswith("healthy: replicating")
    assert sidecar.stop() == 0, sidecar.log()
    assert read_current_object(case) == before


def read_current_object(case: Case) -> str:
    body = case.moto.s3().get_object(Bucket=case.bucket, Key=f"{PREFIX}/CURRENT")["Body"]
    return str(body.read().decode().strip())
