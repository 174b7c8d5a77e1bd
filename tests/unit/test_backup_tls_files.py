"""The direct edge's certificate and ACME account are backed up and restored like key files."""

from __future__ import annotations

from pathlib import Path

from pds_aws.backup.layout import file_key
from pds_aws.backup.mirror import FileMirror
from pds_aws.backup.plan import GenerationContents, build_restore_plan
from pds_aws.backup.settings import BackupUrl
from pds_aws.backup.store import FileStore

GEN = "20261130T101500Z-1a2b"
CERT = "tls/live/fullchain.pem"
ACCOUNT = "tls/account/acme-v02.api.letsencrypt.org/directory/abc/private_key.json"
LOCK = "tls/caddy/locks/issue_cert_x.lock"


def test_mirror_uploads_certificate_files_and_skips_caddy_locks(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for rel, body in ((CERT, b"chain"), (ACCOUNT, b"{}"), (LOCK, b"lock")):
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes(body)
    store = FileStore(BackupUrl("file", "", str(tmp_path / "backup")))
    mirror = FileMirror(store, data, GEN)

    assert mirror.sync() == 0
    assert store.get_bytes(file_key(GEN, CERT)) == b"chain"
    assert store.get_bytes(file_key(GEN, ACCOUNT)) == b"{}"
    assert store.get_bytes(file_key(GEN, LOCK)) is None

    (data / CERT).write_bytes(b"renewed chain")
    assert mirror.sync() == 0
    assert store.get_bytes(file_key(GEN, CERT)) == b"renewed chain"


def test_restore_plan_brings_the_certificate_back_without_accounts() -> None:
    contents = GenerationContents()
    contents.files.update({CERT: 5, ACCOUNT: 2, LOCK: 4})
    plan = build_restore_plan(contents, live_dids=None)
    assert sorted(plan.files) == sorted([CERT, ACCOUNT])
    assert plan.problems == []
