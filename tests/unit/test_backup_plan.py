"""Pure logic of the backup sidecar: the PDS file list, replica URLs, restore plans, settings."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pds_aws.backup import litestream
from pds_aws.backup.__main__ import build_parser, main
from pds_aws.backup.generations import covering_generation
from pds_aws.backup.layout import (
    FileKind,
    classify,
    file_key,
    generation_of,
    is_generation_id,
    new_generation_id,
)
from pds_aws.backup.plan import (
    GenerationContents,
    InvalidTimestamp,
    StoredObject,
    build_restore_plan,
    database_of_ltx_key,
    file_replica_path,
    litestream_config,
    parse_timestamp,
    read_generation,
    replica_url,
    restore_timestamp,
    unexpected_at_start,
)
from pds_aws.backup.restore import crash_hints
from pds_aws.backup.settings import (
    BackupUrl,
    SettingsError,
    parse_backup_url,
    settings_from_env,
)

GEN = "20261129T201500Z-1a2b"
ALICE = "did:plc:alice"
BOB = "did:plc:bob"
T0 = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)


# --- the PDS file list -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "kind", "did"),
    [
        ("account.sqlite", FileKind.DATABASE, None),
        ("sequencer.sqlite", FileKind.DATABASE, None),
        ("did_cache.sqlite", FileKind.DATABASE, None),
        (f"actors/ab/{ALICE}/store.sqlite", FileKind.DATABASE, ALICE),
        (f"actors/ab/{ALICE}/key", FileKind.ACCOUNT_KEY, ALICE),
        (f"actors/ab/{ALICE}/did-op", FileKind.ACCOUNT_FILE, ALICE),
        ("actors/reserved_keys/did:key:zQ3", FileKind.RESERVED_KEY, None),
    ],
)
def test_classify_knows_every_pds_file(rel: str, kind: FileKind, did: str | None) -> None:
    pds_file = classify(rel)
    assert pds_file is not None
    assert (pds_file.kind, pds_file.did) == (kind, did)


@pytest.mark.parametrize(
    "rel",
    [
        "account.sqlite-wal",
        "account.sqlite-shm",
        f"actors/ab/{ALICE}/store.sqlite-wal",
        ".account.sqlite-litestream/ltx/0/0000000000000001-0000000000000001.ltx",
        f"actors/ab/{ALICE}/.store.sqlite-litestream/ltx/0/1-1.ltx",
        ".pds-aws-restore-12/account.sqlite",
        "blobs/tmp/abc",
        f"actors/ab/{ALICE}/notes.txt",
        "",
    ],
)
def test_classify_ignores_working_files_and_unknowns(rel: str) -> None:
    assert classify(rel) is None


def test_account_keys_outlive_their_files_but_reserved_keys_do_not() -> None:
    key = classify(f"actors/ab/{ALICE}/key")
    reserved = classify("actors/reserved_keys/x")
    plc_op = classify(f"actors/ab/{ALICE}/did-op")
    assert key is not None and key.kept_after_removal
    assert reserved is not None and not reserved.kept_after_removal
    assert plc_op is not None and not plc_op.kept_after_removal


def test_generation_ids_sort_by_creation_time() -> None:
    early = new_generation_id(T0, b"\x00\x01")
    late = new_generation_id(T0 + timedelta(seconds=1), b"\xff\xff")
    assert is_generation_id(early) and is_generation_id(late)
    assert early < late
    assert not is_generation_id("../etc")
    assert generation_of(file_key(early, "actors/ab/x/key")) == early
    assert generation_of("CURRENT") is None


# --- replica URLs and the Litestream config --------------------------------------------------


def test_s3_replica_url_for_an_emulator_carries_endpoint_region_and_path_style() -> None:
    url = replica_url(
        BackupUrl("s3", "bk", "pds"),
        GEN,
        f"actors/ab/{ALICE}/store.sqlite",
        endpoint="http://127.0.0.1:5000",
        region="us-east-1",
    )
    assert url.startswith(
        f"s3://bk/pds/generations/{GEN}/litestream/actors/ab/{ALICE}/store.sqlite?"
    )
    assert "endpoint=http%3A%2F%2F127.0.0.1%3A5000" in url
    assert "region=us-east-1" in url
    assert "forcePathStyle=true" in url


def test_s3_replica_url_on_aws_has_no_endpoint_and_no_path_style() -> None:
    url = replica_url(BackupUrl("s3", "bk", ""), GEN, None, endpoint=None, region="eu-west-1")
    assert url == f"s3://bk/generations/{GEN}/litestream?region=eu-west-1"


def test_file_replica_url() -> None:
    url = replica_url(
        BackupUrl("file", "", "/var/backups/pds"),
        GEN,
        "account.sqlite",
        endpoint="http://ignored",
        region=None,
    )
    assert url == f"file:///var/backups/pds/generations/{GEN}/litestream/account.sqlite"


def test_litestream_config_is_directory_mode_with_cheap_idle_and_short_loss_window() -> None:
    config = litestream_config("/pds", "s3://bk/x")
    # Idle: one compaction level ticking every 6 h and daily snapshot/L0 sweeps (plan.py).
    assert config["levels"] == [{"interval": "6h"}]
    assert config["snapshot"] == {"interval": "24h", "retention": "744h"}  # 30 days + one interval
    assert config["l0-retention"] == "5m"
    assert config["l0-retention-check-interval"] == "24h"
    (db,) = config["dbs"]
    assert db["dir"] == "/pds"
    assert db["pattern"] == "*.sqlite"
    assert db["recursive"] is True and db["watch"] is True
    assert db["replica"] == {"url": "s3://bk/x", "sync-interval": "250ms"}
    assert db["monitor-interval"] == "250ms"


def test_litestream_runs_without_aws_ca_bundle() -> None:
    env = litestream.litestream_env({"AWS_CA_BUNDLE": "/etc/ca.pem", "AWS_REGION": "x"})
    assert env == {"AWS_REGION": "x"}


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ('time=x level=INFO msg="snapshot complete"', "INFO"),
        ('time=x level=WARN msg="slow"', "WARN"),
        ('time=x level=ERROR msg="sync error" db=store.sqlite', "ERROR"),
        ('time=x level=ERROR msg="unregister database from store" path=/pds/actors/x', "WARN"),
    ],
)
def test_litestream_log_levels(line: str, level: str) -> None:
    assert litestream.log_level(line) == level


def test_sync_errors_of_a_deleted_account_are_expected_but_others_are_not() -> None:
    line = (
        'level=ERROR msg="sync error" error="cannot verify wal state: open ltx file '
        "/pds/actors/df/did:plc:x/.store.sqlite-litestream/ltx/0/1-1.ltx: open "
        "/pds/actors/df/did:plc:x/.store.sqlite-litestream/ltx/0/1-1.ltx: "
        'no such file or directory"'
    )
    assert litestream.log_level(line, exists=lambda path: False) == "WARN"
    assert litestream.log_level(line, exists=lambda path: True) == "ERROR"


# --- listings and restore plans --------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "rel"),
    [
        ("account.sqlite/0000/0000000000000001-0000000000000001.ltx", "account.sqlite"),
        ("account.sqlite/ltx/0/0000000000000001-0000000000000001.ltx", "account.sqlite"),
        (f"actors/ab/{ALICE}/store.sqlite/0009/1-4.ltx", f"actors/ab/{ALICE}/store.sqlite"),
        ("account.sqlite/0000/notes.txt", None),
        ("loose.ltx", None),
    ],
)
def test_database_of_ltx_key_reads_s3_and_file_layouts(key: str, rel: str | None) -> None:
    assert database_of_ltx_key(key) == rel


@pytest.mark.parametrize(
    ("below", "local"),
    [
        (
            "0000/0000000000000001-0000000000000001.ltx",
            "ltx/0/0000000000000001-0000000000000001.ltx",
        ),
        ("0009/1-4.ltx", "ltx/9/1-4.ltx"),
        ("ltx/1/1-4.ltx", "ltx/1/1-4.ltx"),
        ("zzzz/1-4.ltx", None),
        ("0000/.1-4.ltx.tmp", None),
        ("a/b/c/d.ltx", None),
    ],
)
def test_file_replica_path_maps_s3_levels(below: str, local: str | None) -> None:
    assert file_replica_path(below) == local


def _obj(key: str, minutes: int = 0, size: int = 10) -> StoredObject:
    return StoredObject(f"generations/{GEN}/{key}", size, T0 + timedelta(minutes=minutes))


def _listing(*accounts: tuple[str, bool, bool]) -> GenerationContents:
    objects = [
        _obj("ORIGIN"),
        _obj("litestream/account.sqlite/0000/1-1.ltx", 1),
        _obj("litestream/account.sqlite/0001/1-3.ltx", 5, size=30),
        _obj("litestream/sequencer.sqlite/0000/1-1.ltx", 2),
        _obj("files/actors/reserved_keys/did:key:r1"),
    ]
    for did, store, key in accounts:
        if store:
            objects.append(_obj(f"litestream/actors/ab/{did}/store.sqlite/0000/1-1.ltx", 3))
        if key:
            objects.append(_obj(f"files/actors/ab/{did}/key"))
    return read_generation(objects, GEN)


def test_read_generation_groups_objects_by_database_and_file() -> None:
    contents = _listing((ALICE, True, True))
    assert set(contents.databases) == {
        "account.sqlite",
        "sequencer.sqlite",
        f"actors/ab/{ALICE}/store.sqlite",
    }
    account = contents.databases["account.sqlite"]
    assert (account.objects, account.bytes) == (2, 40)
    assert [local for _, local, _ in account.ltx_files] == ["ltx/0/1-1.ltx", "ltx/1/1-3.ltx"]
    assert account.newest_change == T0 + timedelta(minutes=5)
    assert set(contents.files) == {"actors/reserved_keys/did:key:r1", f"actors/ab/{ALICE}/key"}
    assert contents.unknown == [f"generations/{GEN}/ORIGIN"]
    assert not contents.is_empty
    assert read_generation([], GEN).is_empty


def test_restore_plan_restores_live_accounts_and_skips_deleted_ones() -> None:
    contents = _listing((ALICE, True, True), (BOB, True, True))
    plan = build_restore_plan(contents, frozenset({ALICE}))
    assert plan.problems == []
    assert plan.accounts == [ALICE]
    assert plan.deleted_accounts == [BOB]
    assert f"actors/ab/{ALICE}/store.sqlite" in plan.databases
    assert not any(BOB in rel for rel in plan.databases + plan.files)
    assert {"account.sqlite", "sequencer.sqlite"} <= set(plan.databases)
    assert f"actors/ab/{ALICE}/key" in plan.files
    assert "actors/reserved_keys/did:key:r1" in plan.files


def test_restore_plan_fails_closed_on_a_missing_key_or_store() -> None:
    contents = _listing((ALICE, True, False), (BOB, False, True))
    plan = build_restore_plan(contents, frozenset({ALICE, BOB}))
    assert any(ALICE in p and "no key file" in p for p in plan.problems)
    assert any(BOB in p and "store.sqlite" in p for p in plan.problems)
    assert plan.accounts_without_store == [BOB]


def test_a_store_lost_in_a_crash_gets_a_way_out(tmp_path: Path) -> None:
    account_db = tmp_path / "account.sqlite"
    conn = sqlite3.connect(account_db)
    conn.execute('CREATE TABLE actor (did TEXT PRIMARY KEY, "createdAt" TEXT)')
    conn.execute("INSERT INTO actor VALUES (?, ?)", (BOB, "2026-11-29T20:14:59.120Z"))
    conn.commit()
    conn.close()
    (hint,) = crash_hints(account_db, [BOB])
    assert "2026-11-29T20:14:59.120Z" in hint
    assert "restore-at" in hint
    assert crash_hints(account_db, []) == []


def test_restore_plan_fails_closed_when_the_account_list_is_unknown() -> None:
    contents = _listing((ALICE, True, True))
    plan = build_restore_plan(contents, None)
    assert len(plan.problems) == 1
    assert "account.sqlite" in plan.problems[0]


def test_restore_plan_of_a_pds_without_accounts_is_fine() -> None:
    plan = build_restore_plan(_listing(), frozenset())
    assert plan.problems == []
    assert plan.accounts == []


# --- time -----------------------------------------------------------------------------------


def test_parse_timestamp_needs_a_zone() -> None:
    assert parse_timestamp("2026-11-29T20:15:00Z") == datetime(2026, 11, 29, 20, 15, tzinfo=UTC)
    assert parse_timestamp("2026-11-29T21:15:00+01:00") == datetime(
        2026, 11, 29, 20, 15, tzinfo=UTC
    )
    with pytest.raises(InvalidTimestamp, match="2026-11-29T20:15:00Z"):
        parse_timestamp("2026-11-29T20:15:00")
    with pytest.raises(InvalidTimestamp):
        parse_timestamp("yesterday")


def test_restore_timestamp_restores_latest_when_nothing_changed_after_t() -> None:
    at = T0 + timedelta(minutes=10)
    assert restore_timestamp(None, T0) is None
    assert restore_timestamp(at, T0) is None
    assert restore_timestamp(at, at + timedelta(seconds=1)) == "2026-11-29T20:10:00.000000Z"


def test_covering_generation_walks_back_to_the_one_that_held_the_data_at_t() -> None:
    chain: list[dict[str, str | None]] = [
        {"generation": "g3", "seeded": "2026-11-29T20:30:00.000000Z"},
        {"generation": "g2", "seeded": "2026-11-29T20:20:00.000000Z"},
        {"generation": "g1", "created": "2026-11-29T20:00:00.000000Z"},
    ]
    assert covering_generation(chain, T0 + timedelta(minutes=35)) == "g3"
    assert covering_generation(chain, T0 + timedelta(minutes=25)) == "g2"
    assert covering_generation(chain, T0 + timedelta(minutes=5)) == "g1"
    assert covering_generation(chain, T0 - timedelta(minutes=5)) is None


def test_only_lost_and_found_is_tolerated_in_the_data_directory() -> None:
    assert unexpected_at_start(["lost+found", ".pds-aws-restore-1"]) == []
    assert unexpected_at_start(["account.sqlite", "lost+found"]) == ["account.sqlite"]


# --- settings and command line ---------------------------------------------------------------


def test_backup_url_forms() -> None:
    assert parse_backup_url("s3://bk/pds/prod/") == BackupUrl("s3", "bk", "pds/prod")
    assert parse_backup_url("s3://bk") == BackupUrl("s3", "bk", "")
    assert parse_backup_url("file:///var/b/") == BackupUrl("file", "", "/var/b")
    for bad in ("s3:///pds", "http://x/y", "file://relative/path", "s3://bk/p?endpoint=x"):
        with pytest.raises(SettingsError, match="BACKUP_URL"):
            parse_backup_url(bad)


def test_settings_from_env() -> None:
    settings = settings_from_env(
        {
            "BACKUP_URL": "s3://bk/pds",
            "AWS_REGION": "eu-west-1",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
            "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:2",
        }
    )
    assert settings.data_dir == Path("/pds")
    assert settings.s3_endpoint == "http://127.0.0.1:2"
    assert settings.region == "eu-west-1"
    other = settings_from_env({"BACKUP_URL": "s3://bk/pds", "PDS_DATA_DIRECTORY": "/data"})
    assert other.state_dir != settings.state_dir  # one health marker per data directory
    with pytest.raises(SettingsError, match="BACKUP_URL is not set"):
        settings_from_env({})
    with pytest.raises(SettingsError, match="PDS_DATA_DIRECTORY"):
        settings_from_env({"BACKUP_URL": "s3://bk", "PDS_DATA_DIRECTORY": "pds"})


def test_command_line_has_the_contract_subcommands() -> None:
    parser = build_parser()
    for argv in (["run"], ["health"], ["drill"], ["status"], ["restore-at", "latest"]):
        assert parser.parse_args(argv).command == argv[0]
    args = parser.parse_args(["restore-at", "2026-11-29T20:15:00Z", "--generation", GEN])
    assert (args.timestamp, args.generation) == ("2026-11-29T20:15:00Z", GEN)


def test_missing_backup_url_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["health"], environ={}) == 2
    assert "ERROR backup: BACKUP_URL is not set" in capsys.readouterr().err


def test_health_is_false_without_a_running_sidecar(tmp_path: Path) -> None:
    env = {"BACKUP_URL": "file:///nowhere", "BACKUP_STATE_DIRECTORY": str(tmp_path)}
    assert main(["health"], environ=env) == 1
    (tmp_path / "healthy.json").write_text('{"pid": 999999999, "litestream_pid": 999999999}')
    assert main(["health"], environ=env) == 1
