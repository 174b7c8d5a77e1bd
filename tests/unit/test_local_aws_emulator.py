"""The local AWS keeps its state across a crash: journal + replay, KMS key material included.

moto runs in-process here (no server): the journal middleware and the replay are exercised
through WSGI, and moto's state is reset between "runs" as a killed process would lose it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from pds_aws.local.aws_emulator import Journal, JournalingApp, KmsKeyStore, is_mutating, replay

REGION = "us-east-2"


def auth(service: str) -> str:
    # moto routes a request to a service by the credential scope of its signature.
    return (
        f"AWS4-HMAC-SHA256 Credential=local/20261129/{REGION}/{service}/aws4_request, "
        "SignedHeaders=host, Signature=0"
    )


def kms(client: Client, action: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        "/",
        data=json.dumps(body),
        headers={
            "Authorization": auth("kms"),
            "X-Amz-Target": f"TrentService.{action}",
            "Content-Type": "application/x-amz-json-1.1",
            "Host": "127.0.0.1:4566",
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    result: dict[str, Any] = json.loads(response.get_data())
    return result


def s3(client: Client, method: str, path: str, data: bytes = b"") -> Any:
    return client.open(
        path,
        method=method,
        data=data,
        headers={"Authorization": auth("s3"), "Host": "127.0.0.1:4566"},
    )


def create_bucket(client: Client, name: str) -> int:
    body = (
        '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<LocationConstraint>{REGION}</LocationConstraint></CreateBucketConfiguration>"
    )
    return int(s3(client, "PUT", f"/{name}", body.encode()).status_code)


@pytest.fixture
def fresh_moto() -> Iterator[Any]:
    from moto.moto_api._internal.models import moto_api_backend
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    moto_api_backend.reset()
    yield lambda: DomainDispatcherApplication(create_backend_app)
    moto_api_backend.reset()


def test_reads_are_not_journaled() -> None:
    assert is_mutating("PUT", "")
    assert is_mutating("DELETE", "")
    assert is_mutating("POST", "TrentService.CreateKey")
    assert is_mutating("POST", "secretsmanager.PutSecretValue")
    assert not is_mutating("GET", "")
    assert not is_mutating("HEAD", "")
    assert not is_mutating("POST", "TrentService.Sign")
    assert not is_mutating("POST", "TrentService.GetPublicKey")
    assert not is_mutating("POST", "secretsmanager.GetSecretValue")


def test_state_survives_a_crash(tmp_path: Path, fresh_moto: Any) -> None:
    from moto.moto_api._internal.models import moto_api_backend

    journal_path, keys_path = tmp_path / "requests.jsonl", tmp_path / "kms-keys.jsonl"
    app = JournalingApp(fresh_moto(), Journal(journal_path), KmsKeyStore(keys_path))
    client = Client(app)
    assert create_bucket(client, "blobs-bucket") == 200
    blob = bytes(range(256)) * 40
    assert s3(client, "PUT", "/blobs-bucket/blocks/a%2Fb", blob).status_code == 200
    assert s3(client, "PUT", "/blobs-bucket/tmp/x", b"temporary").status_code == 200
    assert s3(client, "DELETE", "/blobs-bucket/tmp/x").status_code == 204
    key_id = kms(client, "CreateKey", {"KeySpec": "ECC_SECG_P256K1", "KeyUsage": "SIGN_VERIFY"})[
        "KeyMetadata"
    ]["KeyId"]
    kms(client, "CreateAlias", {"AliasName": "alias/rotation", "TargetKeyId": key_id})
    public_key = kms(client, "GetPublicKey", {"KeyId": "alias/rotation"})["PublicKey"]
    written_at = s3(client, "HEAD", "/blobs-bucket/blocks/a%2Fb").headers["Last-Modified"]
    assert s3(client, "GET", "/blobs-bucket/blocks/a%2Fb").get_data() == blob
    # A failed request changes nothing and is not journaled.
    assert s3(client, "PUT", "/no-such-bucket/x", b"x").status_code == 404

    lines = journal_path.read_text().splitlines()
    assert len(lines) == 6  # 2 bucket/object PUTs + PUT + DELETE + CreateKey + CreateAlias
    assert oct(journal_path.stat().st_mode & 0o777) == "0o600"

    time.sleep(1.1)  # Last-Modified has 1 s resolution: a fresh write would differ
    moto_api_backend.reset()  # the process is gone: moto's memory with it
    assert s3(Client(fresh_moto()), "GET", "/blobs-bucket/blocks/a%2Fb").status_code == 404

    moto_app = fresh_moto()
    keys = KmsKeyStore(keys_path)
    assert replay(moto_app, Journal(journal_path), keys) == 6
    client = Client(JournalingApp(moto_app, Journal(journal_path), keys))
    assert s3(client, "GET", "/blobs-bucket/blocks/a%2Fb").get_data() == blob
    assert s3(client, "GET", "/blobs-bucket/tmp/x").status_code == 404
    # Litestream's point-in-time restore picks LTX files by LastModified: kept by the replay.
    assert s3(client, "HEAD", "/blobs-bucket/blocks/a%2Fb").headers["Last-Modified"] == written_at
    restored = kms(client, "DescribeKey", {"KeyId": "alias/rotation"})["KeyMetadata"]
    assert restored["KeyId"] == key_id
    assert kms(client, "GetPublicKey", {"KeyId": key_id})["PublicKey"] == public_key
    # Nothing was journaled twice by the replay.
    assert len(journal_path.read_text().splitlines()) == 6


def test_a_line_cut_short_by_a_crash_is_skipped(tmp_path: Path, fresh_moto: Any) -> None:
    journal_path = tmp_path / "requests.jsonl"
    app = JournalingApp(fresh_moto(), Journal(journal_path), KmsKeyStore(tmp_path / "k.jsonl"))
    assert create_bucket(Client(app), "kept-bucket") == 200
    with journal_path.open("a") as journal:
        journal.write('{"method": "PUT", "path": "/lost-buck')
    assert replay(fresh_moto(), Journal(journal_path), KmsKeyStore(tmp_path / "k.jsonl")) == 1
