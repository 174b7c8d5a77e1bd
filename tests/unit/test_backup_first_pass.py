"""Healthy only after Litestream's first pass: positions read from a file:// backup store,
restored key files not uploaded again; no processes."""

from __future__ import annotations

import threading
from pathlib import Path

from pds_aws.backup.first_pass import (
    Outcome,
    behind,
    expected_positions,
    next_poll_delay,
    replica_positions,
    wait_first_pass,
)
from pds_aws.backup.layout import file_key, litestream_prefix
from pds_aws.backup.mirror import FileMirror
from pds_aws.backup.plan import read_generation
from pds_aws.backup.settings import BackupUrl
from pds_aws.backup.store import FileStore

GEN = "20261130T120000Z-1a2b"
STORE_DB = "actors/ab/did:plc:alice/store.sqlite"


def _store(tmp_path: Path) -> FileStore:
    return FileStore(BackupUrl("file", "", str(tmp_path / "backup")))


def _ltx(store: FileStore, rel: str, level: int, lo: int, hi: int) -> None:
    name = f"{level:04x}/{lo:016x}-{hi:016x}.ltx"
    store.put_bytes(f"{litestream_prefix(GEN)}/{rel}/{name}", b"ltx")


def _positions(store: FileStore) -> dict[str, int]:
    return replica_positions(read_generation(store.list_objects(f"generations/{GEN}/"), GEN))


def test_positions_are_the_highest_txid_of_any_level(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _ltx(store, "account.sqlite", 9, 1, 40)
    _ltx(store, "account.sqlite", 1, 41, 50)
    _ltx(store, "account.sqlite", 0, 51, 51)
    _ltx(store, STORE_DB, 9, 1, 7)
    assert _positions(store) == {"account.sqlite": 51, STORE_DB: 7}


def test_every_database_on_disk_must_pass_its_restored_position() -> None:
    restored = {"account.sqlite": 51, STORE_DB: 7}
    # An adopted database (not in the backup yet) must reach any position at all.
    expected = {"account.sqlite": 51, STORE_DB: 7, "sequencer.sqlite": 0}
    assert behind(expected, restored) == ["account.sqlite", STORE_DB, "sequencer.sqlite"]
    assert behind(expected, {"account.sqlite": 52, STORE_DB: 8}) == ["sequencer.sqlite"]
    assert behind(expected, {"account.sqlite": 52, STORE_DB: 8, "sequencer.sqlite": 1}) == []


def test_expected_positions_cover_the_databases_on_disk_only(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _ltx(store, "account.sqlite", 9, 1, 40)
    _ltx(store, "actors/cd/did:plc:gone/store.sqlite", 9, 1, 3)  # deleted: not restored
    contents = read_generation(store.list_objects(f"generations/{GEN}/"), GEN)
    on_disk = {"account.sqlite", "did_cache.sqlite"}
    assert expected_positions(on_disk, contents) == {"account.sqlite": 40, "did_cache.sqlite": 0}


def test_the_wait_ends_once_every_database_is_past_its_position(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _ltx(store, "account.sqlite", 9, 1, 40)
    _ltx(store, STORE_DB, 9, 1, 7)
    expected = _positions(store)
    polls: list[int] = []

    def tick() -> bool:  # Litestream's uploads, one database per poll
        polls.append(1)
        if len(polls) == 2:
            _ltx(store, "account.sqlite", 0, 41, 41)
        if len(polls) == 3:
            _ltx(store, STORE_DB, 0, 8, 8)
        return False

    outcome = wait_first_pass(
        store, GEN, expected, stop=threading.Event(), litestream_exited=tick, poll=0.0
    )
    assert outcome is Outcome.DONE
    assert len(polls) == 3


def test_the_wait_gives_up_stops_and_notices_litestream_exiting(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _ltx(store, "account.sqlite", 9, 1, 40)
    expected = _positions(store)
    never = threading.Event()
    clock = iter(range(0, 10_000, 100)).__next__

    def run(stop: threading.Event, exited: bool) -> Outcome:
        return wait_first_pass(
            store,
            GEN,
            expected,
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


def test_polls_wait_longer_when_the_listing_is_slow() -> None:
    """A listing that takes a while (a large generation, a busy store) is not repeated at once:
    the poll's LISTs take at most a third of the store's time during the first pass."""
    assert next_poll_delay(1.0, 0.1) == 1.0
    assert next_poll_delay(1.0, 2.0) == 4.0
    assert next_poll_delay(0.0, 0.0) == 0.0
