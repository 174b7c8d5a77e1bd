"""Shared parts of the backup benchmarks: a counting moto server, the real sidecar as a
process (`pds-aws-backup`, the console script the container runs), the writer, and a data
directory shaped like a PDS's (paths from `pds_aws.backup.layout`, the one copy of that list).

Every process is started on 127.0.0.1 with an explicit environment and stopped by its own pid.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from pds_aws.backup.layout import (
    ACCOUNT_DATABASE,
    ACCOUNT_KEY,
    ACCOUNT_STORE,
    ACTORS_DIR,
    TOP_LEVEL_DATABASES,
)

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
BACKUP_PROGRAM = str(VENV_BIN / "pds-aws-backup")
BUCKET = "pds-backup"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[Any], timeout: float = 30.0) -> int:
    """SIGTERM, then SIGKILL if it does not exit in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(timeout=10)


def command_line() -> str:
    """How this benchmark was started, for BENCHMARKS.md."""
    script = Path(sys.argv[0]).resolve().relative_to(HERE.parent).as_posix()
    return " ".join([".venv/bin/python", script, *sys.argv[1:]])


def machine() -> str:
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"load average {load[0]:.1f} at start"
    )


def emit_summary(summary: dict[str, Any], path: Path | None) -> None:
    """Print a benchmark's summary as one JSON line and keep it for backup_report.py."""
    print(json.dumps(summary), flush=True)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=2))


# --- moto ----------------------------------------------------------------------------------


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

    def requests(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.url}/__requests", timeout=10) as response:
            counts: dict[str, int] = json.loads(response.read())
        return counts

    def reset_requests(self) -> None:
        request = urllib.request.Request(f"{self.url}/__requests/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()


@contextmanager
def moto_server(workdir: Path) -> Iterator[Moto]:
    port = free_port()
    log = (workdir / "moto.log").open("wb")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    process = subprocess.Popen(
        [sys.executable, str(HERE / "backup_moto.py"), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    server = Moto(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + 60
    while True:
        try:
            server.requests()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                stop_process(process)
                raise RuntimeError(
                    f"moto server did not start; see {workdir / 'moto.log'}"
                ) from None
            time.sleep(0.2)
    server.s3().create_bucket(Bucket=BUCKET)
    try:
        yield server
    finally:
        stop_process(process)
        log.close()


# --- the sidecar ---------------------------------------------------------------------------


def sidecar_env(moto: Moto, prefix: str, data_dir: Path, state_dir: Path) -> dict[str, str]:
    """What the task definition sets, with moto as S3 (AWS_CA_BUNDLE kept: the sidecar must
    remove it from Litestream's environment itself)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    if "AWS_CA_BUNDLE" in os.environ:
        env["AWS_CA_BUNDLE"] = os.environ["AWS_CA_BUNDLE"]
    env.update(
        BACKUP_URL=f"s3://{BUCKET}/{prefix}",
        PDS_DATA_DIRECTORY=str(data_dir),
        BACKUP_STATE_DIRECTORY=str(state_dir),
        AWS_REGION=REGION,
        AWS_ENDPOINT_URL_S3=moto.url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        # No PDS runs beside the sidecar here (the writer stands in for it): replicate right
        # after the restore, as the figures were measured.
        PDS_HEALTH_URL="none",
        # The benchmarks SIGKILL sidecars: their lease expires in 2 minutes, not 4; long
        # enough that renewals outlast a moto server made slow by the adoption of hundreds
        # of databases (the holder gives up 100 s after its last renewal).
        BACKUP_LEASE_SECONDS="120",
    )
    return env


# Runs the sidecar with extra Litestream settings merged into the config it writes: top-level
# keys replace the sidecar's, and a "dbs" object is merged into each of its `dbs` entries. For
# what-if measurements only (backup_idle_requests.py --litestream-override,
# backup_write_overhead.py --what-if-no-watch).
_OVERRIDDEN_RUN = """
import json, sys
from pds_aws.backup import litestream
from pds_aws.backup.__main__ import main
base = litestream.litestream_config
override = json.loads(sys.argv[1])
each_db = override.pop("dbs", {})
def config(*args):
    merged = {**base(*args), **override}
    merged["dbs"] = [{**db, **each_db} for db in merged["dbs"]]
    return merged
litestream.litestream_config = config
sys.exit(main(["run"]))
"""


@dataclass
class Sidecar:
    """`pds-aws-backup run` as the container runs it."""

    env: dict[str, str]
    log_path: Path
    litestream_override: dict[str, Any] | None = None
    process: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self._log = self.log_path.open("ab")
        command = [BACKUP_PROGRAM, "run"]
        if self.litestream_override:
            command = [sys.executable, "-c", _OVERRIDDEN_RUN, json.dumps(self.litestream_override)]
        self.process = subprocess.Popen(
            command, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def healthy(self) -> bool:
        done = subprocess.run(
            [BACKUP_PROGRAM, "health"], env=self.env, capture_output=True, timeout=30, check=False
        )
        return done.returncode == 0

    def wait_healthy(self, timeout: float) -> float:
        """Seconds from now until `health` passes (polled every 0.2 s)."""
        started = time.monotonic()
        while not self.healthy():
            if self.process.poll() is not None:
                raise RuntimeError(f"sidecar exited {self.process.returncode}: {self.log_path}")
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"sidecar not healthy after {timeout:.0f} s: {self.log_path}")
            time.sleep(0.2)
        return time.monotonic() - started

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)
        self._log.close()

    def stop(self) -> int:
        code = stop_process(self.process, timeout=150)
        self._log.close()
        return code


def backup_status(env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [BACKUP_PROGRAM, "status"], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    status: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return status


def wait_replicated(env: dict[str, str], databases: int, timeout: float) -> float:
    """Seconds until `status` lists `databases` replicated databases."""
    started = time.monotonic()
    while backup_status(env)["database_count"] < databases:
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"fewer than {databases} databases replicated after {timeout} s")
        time.sleep(2)
    return time.monotonic() - started


# --- the writer ----------------------------------------------------------------------------


def start_writer(
    database: Path,
    acks: Path,
    *,
    rate: float,
    count: int = 0,
    latencies: Path | None = None,
    timestamps: bool = False,
) -> subprocess.Popen[bytes]:
    args = [sys.executable, str(HERE / "backup_writer.py"), str(database), "--acks", str(acks)]
    args += ["--rate", str(rate), "--count", str(count)]
    if timestamps:
        args.append("--timestamps")
    if latencies is not None:
        args += ["--latencies", str(latencies)]
    return subprocess.Popen(args, env={"PATH": os.environ.get("PATH", "")})


def max_row_id(database: Path) -> int:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM event").fetchone()[0])
    finally:
        conn.close()


# --- a PDS-shaped data directory -----------------------------------------------------------


def did_of(n: int) -> str:
    return f"did:plc:{hashlib.sha256(f'bench{n}'.encode()).hexdigest()[:24]}"


def account_dir(data: Path, did: str) -> Path:
    return data / ACTORS_DIR / hashlib.sha256(did.encode()).hexdigest()[:2] / did


def _wal(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    return conn


def populate(
    data: Path, accounts: int, records_per_account: int = 20, record_bytes: int = 200
) -> int:
    """Top-level databases, `accounts` account stores (by default a few KB of records: 20 of
    200 random bytes) and keys. Returns the number of databases."""
    account_db = _wal(data / ACCOUNT_DATABASE)
    account_db.execute("CREATE TABLE actor (did TEXT PRIMARY KEY, handle TEXT, createdAt TEXT)")
    for name in TOP_LEVEL_DATABASES:
        if name != ACCOUNT_DATABASE:
            _wal(data / name).execute("CREATE TABLE event (id INTEGER PRIMARY KEY, body BLOB)")
    now = datetime.now(UTC).isoformat()
    for n in range(accounts):
        did = did_of(n)
        folder = account_dir(data, did)
        store = _wal(folder / ACCOUNT_STORE)
        store.execute("CREATE TABLE record (uri TEXT PRIMARY KEY, cid TEXT, content BLOB)")
        store.execute("BEGIN")
        for i in range(records_per_account):
            store.execute(
                "INSERT INTO record VALUES (?, ?, ?)",
                (f"at://{did}/app.bsky.feed.post/{i}", f"cid{i}", os.urandom(record_bytes)),
            )
        store.execute("COMMIT")
        store.close()
        (folder / ACCOUNT_KEY).write_bytes(os.urandom(32))
        account_db.execute("INSERT INTO actor VALUES (?, ?, ?)", (did, f"u{n}.test", now))
    account_db.close()
    return len(TOP_LEVEL_DATABASES) + accounts


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]
