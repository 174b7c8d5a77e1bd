"""Healthy only after Litestream's first sync of every database: what its control socket
reports (a stand-in server on a Unix socket answering as Litestream 0.5's `GET /list`), the
outcomes of the wait, and restored key files not uploaded again; no Litestream process (the
real one is tests/integration/test_backup_resume.py)."""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pds_aws.backup.first_sync import Outcome, synced_databases, wait_first_sync
from pds_aws.backup.layout import file_key
from pds_aws.backup.mirror import FileMirror
from pds_aws.backup.settings import BackupUrl
from pds_aws.backup.store import FileStore

GEN = "20261130T120000Z-1a2b"
STORE_DB = "actors/ab/did:plc:alice/store.sqlite"
DATA = Path("/pds")


def _store(tmp_path: Path) -> FileStore:
    return FileStore(BackupUrl("file", "", str(tmp_path / "backup")))


class _Litestream(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    synced: set[str]


class _List(http.server.BaseHTTPRequestHandler):
    server: _Litestream

    def address_string(self) -> str:
        return "unix"

    def do_GET(self) -> None:
        listed = [
            {"path": str(DATA / rel), "status": "replicating"}
            | ({"last_sync_at": "2026-11-30T12:00:00Z"} if rel in self.server.synced else {})
            for rel in ["account.sqlite", STORE_DB]
        ]
        body = json.dumps({"databases": listed}).encode()
        self.send_response(200 if self.path == "/list" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def litestream(tmp_path: Path) -> Iterator[_Litestream]:
    server = _Litestream(str(tmp_path / "litestream.sock"), _List)
    server.synced = set()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_synced_databases_are_those_with_a_last_sync(
    tmp_path: Path, litestream: _Litestream
) -> None:
    control = tmp_path / "litestream.sock"
    assert synced_databases(control, DATA) == set()
    litestream.synced = {STORE_DB}
    assert synced_databases(control, DATA) == {STORE_DB}


def test_the_wait_ends_once_every_database_has_synced(
    tmp_path: Path, litestream: _Litestream
) -> None:
    polls: list[int] = []

    def tick() -> bool:  # Litestream's syncs, one database per poll
        polls.append(1)
        if len(polls) == 2:
            litestream.synced = {"account.sqlite"}
        if len(polls) == 3:
            litestream.synced = {"account.sqlite", STORE_DB}
        return False

    outcome = wait_first_sync(
        tmp_path / "litestream.sock",
        DATA,
        {"account.sqlite", STORE_DB},
        stop=threading.Event(),
        litestream_exited=tick,
        poll=0.0,
    )
    assert outcome is Outcome.DONE
    assert len(polls) == 3


def test_the_wait_gives_up_stops_and_notices_litestream_exiting(tmp_path: Path) -> None:
    """No socket (Litestream not listening yet, or never): nothing counts as synced."""
    never = threading.Event()
    clock = iter(range(0, 10_000, 100)).__next__

    def run(stop: threading.Event, exited: bool) -> Outcome:
        return wait_first_sync(
            tmp_path / "missing.sock",
            DATA,
            {"account.sqlite"},
            stop=stop,
            litestream_exited=lambda: exited,
            poll=0.0,
            timeout=250.0,
            clock=lambda: float(clock()),
        )

    assert run(never, exited=False) is Outcome.TIMED_OUT
    assert run(never, exited=True) is Outcome.EXITED
    stopped = threading.Event()
    stopped.set()
    assert run(stopped, exited=False) is Outcome.STOPPED


def test_restored_key_files_are_not_uploaded_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    account = data / "actors" / "ab" / "did:plc:alice"
    account.mkdir(parents=True)
    (account / "key").write_bytes(b"k1")
    (data / "actors" / "ab" / "did:plc:bob").mkdir()
    (data / "actors" / "ab" / "did:plc:bob" / "key").write_bytes(b"other size")
    store = _store(tmp_path)
    mirror = FileMirror(store, data, GEN)
    stored = {"actors/ab/did:plc:alice/key": 2, "actors/ab/did:plc:bob/key": 3}
    assert mirror.adopt_restored(stored) == 1
    assert mirror.sync() == 0
    # alice's restored key is the stored object already; bob's differs in size: uploaded.
    assert store.get_bytes(file_key(GEN, "actors/ab/did:plc:alice/key")) is None
    assert store.get_bytes(file_key(GEN, "actors/ab/did:plc:bob/key")) == b"other size"
