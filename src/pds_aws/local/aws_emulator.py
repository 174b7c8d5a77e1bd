"""The local AWS: moto server (S3, KMS, Secrets Manager) whose state survives a crash.

moto keeps everything in memory, but a replacement task on AWS finds its buckets, rotation
key and secrets where it left them. So this process wraps moto's WSGI app with a journal:
every successful mutating request is appended to `requests.jsonl` (and flushed) before its
response goes out, so nothing a client saw acknowledged is lost to a SIGKILL. At start the
journal is replayed in-process, before the port opens, and then compacted to the requests that
recreate the current state (journal_compaction.py), so it grows with the live data, not with
every upload ever made.

KMS key material is the one thing a replay cannot reproduce (moto draws a fresh private key on
CreateKey), so each new key's private key is saved to `kms-keys.jsonl` in creation order and
put back into the replayed keys, which are created in the same order. Key ids change on each
replay; the runtime finds the rotation key by its alias.

Run: python -m pds_aws.local.aws_emulator --port PORT --state-dir DIR
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

# JSON-protocol actions (X-Amz-Target) that change nothing: not journaled.
_READ_ONLY_ACTION_PREFIXES = (
    "Get",
    "List",
    "Describe",
    "Sign",
    "Verify",
    "Encrypt",
    "Decrypt",
    "ReEncrypt",
    "GenerateDataKey",
    "GenerateMac",
    "VerifyMac",
    "GenerateRandom",
    "BatchGet",
    "ValidateResourcePolicy",
)
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_JOURNALED_HEADERS = ("CONTENT_TYPE",)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def is_mutating(method: str, amz_target: str) -> bool:
    """Whether a request may change moto's state (and so must be journaled)."""
    if method.upper() in _READ_METHODS:
        return False
    action = amz_target.rsplit(".", 1)[-1]
    return not (amz_target and action.startswith(_READ_ONLY_ACTION_PREFIXES))


def _read_body(environ: dict[str, Any]) -> bytes:
    stream = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated") or environ.get("HTTP_TRANSFER_ENCODING"):
        return bytes(stream.read())
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return bytes(stream.read(length)) if length else b""


class Journal:
    """Append-only log of mutating requests, one JSON object a line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch(mode=0o600)  # holds secret values and key material: owner only
        self._file = path.open("a", encoding="utf-8")

    def append(
        self, environ: dict[str, Any], body: bytes, moment: float, upload_id: str = ""
    ) -> None:
        headers = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
        headers.pop("HTTP_TRANSFER_ENCODING", None)
        headers.update({k: environ[k] for k in _JOURNALED_HEADERS if k in environ})
        entry = {
            "method": environ["REQUEST_METHOD"],
            "path": environ.get("PATH_INFO", ""),
            "query": environ.get("QUERY_STRING", ""),
            "raw_uri": environ.get("RAW_URI", ""),  # S3 keys: the path before decoding
            "headers": headers,
            "body": base64.b64encode(body).decode("ascii"),
            "time": moment,
        }
        if upload_id:  # CreateMultipartUpload: the replay maps it to the id moto draws then
            entry["upload_id"] = upload_id
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()

    def rewrite(self, entries: Iterable[dict[str, Any]]) -> None:
        """Replace the journal with `entries`, atomically: a crash leaves the old or the new."""
        temporary = self.path.with_name(self.path.name + ".compacting")
        try:
            with os.fdopen(
                os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w"
            ) as out:
                for entry in entries:
                    out.write(json.dumps(entry) + "\n")
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        self._file.close()
        os.replace(temporary, self.path)
        self._file = self.path.open("a", encoding="utf-8")

    def entries(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue  # cut short by a crash: never acknowledged


def _environ_for(entry: dict[str, Any]) -> dict[str, Any]:
    body = base64.b64decode(entry["body"])
    environ: dict[str, Any] = {
        "REQUEST_METHOD": entry["method"],
        "SCRIPT_NAME": "",
        "PATH_INFO": entry["path"],
        "QUERY_STRING": entry["query"],
        "RAW_URI": entry.get("raw_uri") or "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    environ.update(entry["headers"])
    return environ


@contextmanager
def _s3_clock_at(moment: float | None) -> Iterator[None]:
    """Replayed S3 objects keep the LastModified of the journaled request: Litestream's
    point-in-time restore picks LTX files by it, so a replay must not make them all new."""
    if moment is None:
        yield
        return
    import moto.s3.models as s3_models

    clock = "utcnow"  # what moto's S3 models stamp objects with
    original = getattr(s3_models, clock)
    frozen = datetime.fromtimestamp(float(moment), UTC).replace(tzinfo=None)
    setattr(s3_models, clock, lambda: frozen)
    try:
        yield
    finally:
        setattr(s3_models, clock, original)


_UPLOAD_ID = re.compile(rb"<UploadId>([^<]+)</UploadId>")


def created_upload_id(environ: dict[str, Any], response: bytes) -> str:
    """The UploadId a CreateMultipartUpload (POST ?uploads) answered, else ""."""
    if environ.get("REQUEST_METHOD") != "POST" or "uploads" not in parse_qs(
        str(environ.get("QUERY_STRING", "")), keep_blank_values=True
    ):
        return ""
    match = _UPLOAD_ID.search(response)
    return match.group(1).decode("ascii") if match else ""


def replay(app: WsgiApp, journal: Journal, kms_keys: KmsKeyStore) -> int:
    """Apply every journaled request to a fresh moto, in order; return how many.

    Multipart upload ids are random: each journaled id is mapped to the one the replayed
    CreateMultipartUpload gets, and the later parts of that upload are sent with it."""
    count = 0
    upload_ids: dict[str, str] = {}
    for entry in journal.entries():
        target = str(entry["headers"].get("HTTP_X_AMZ_TARGET", ""))
        for old, new in upload_ids.items():
            if old in entry["query"]:
                entry["query"] = entry["query"].replace(old, new)
                entry["raw_uri"] = str(entry.get("raw_uri", "")).replace(old, new)
        with _s3_clock_at(entry.get("time")):
            environ = _environ_for(entry)
            result = app(environ, lambda *_args, **_kwargs: None)
            response = b"".join(result)
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if entry.get("upload_id"):
            upload_ids[str(entry["upload_id"])] = created_upload_id(environ, response)
        if target.startswith("TrentService."):
            kms_keys.adopt_replayed()
        count += 1
    return count


class KmsKeyStore:
    """Keeps KMS keys' ids and private keys across replays.

    Each new key is saved (id + private key, creation order) when its CreateKey succeeds.
    While the journal is replayed, the key each CreateKey makes is given back the saved id and
    private key, so aliases, key policies and the PDS's PLC rotation key stay the same.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._known: set[str] = set()
        self._saved: list[dict[str, str]] = []
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    self._saved.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # cut short by a crash: its CreateKey was never acknowledged

    @staticmethod
    def _backends() -> list[Any]:
        from moto.kms.models import kms_backends

        return [
            kms_backends[account_id][region]
            for account_id in list(kms_backends.keys())
            for region in list(kms_backends[account_id].keys())
        ]

    def adopt_replayed(self) -> None:
        """Give keys created by a replayed CreateKey their saved id and private key."""
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        for backend in self._backends():
            for new_id, key in list(backend.keys.items()):
                if new_id in self._known:
                    continue
                if not self._saved:
                    raise RuntimeError(
                        f"KMS key {new_id} replayed from the journal has no saved key material "
                        f"in {self.path}; the local AWS state is inconsistent"
                    )
                saved = self._saved.pop(0)
                old_id = saved["key_id"]
                del backend.keys[new_id]
                key.id = old_id
                key.arn = key.arn.replace(new_id, old_id)
                key.private_key.private_key = load_pem_private_key(
                    saved["pem"].encode("ascii"), None
                )
                backend.keys[old_id] = key
                self._known.add(old_id)

    def save_new(self) -> None:
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            NoEncryption,
            PrivateFormat,
        )

        for backend in self._backends():
            for key in list(backend.keys.values()):
                if key.id in self._known:
                    continue
                pem = key.private_key.private_key.private_bytes(
                    Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
                ).decode("ascii")
                with self.path.open("a", encoding="utf-8") as out:
                    out.write(json.dumps({"key_id": key.id, "pem": pem}) + "\n")
                self.path.chmod(0o600)
                self._known.add(key.id)


class JournalingApp:
    """WSGI middleware: serialises mutating requests and journals the successful ones."""

    def __init__(self, app: WsgiApp, journal: Journal, kms_keys: KmsKeyStore) -> None:
        self.app = app
        self.journal = journal
        self.kms_keys = kms_keys
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if not is_mutating(str(environ.get("REQUEST_METHOD", "GET")), target):
            return self.app(environ, start_response)
        body = _read_body(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ.pop("wsgi.input_terminated", None)
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"] = status
            return start_response(status, headers, exc_info)

        with self._lock:
            # The journaled time is the objects' LastModified, in the replay as now.
            moment = time.time()
            with _s3_clock_at(moment):
                chunks = list(self.app(environ, capture))
            if int(str(captured.get("status", "500")).split(" ", 1)[0]) < 400:
                upload_id = created_upload_id(environ, b"".join(chunks))
                self.journal.append(environ, body, moment, upload_id)
                if target.startswith("TrentService."):
                    self.kms_keys.save_new()
        return chunks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pds_aws.local.aws_emulator")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args(argv)

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    from pds_aws.local.journal_compaction import compact

    state_dir: Path = args.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    moto_app: WsgiApp = DomainDispatcherApplication(create_backend_app)
    journal = Journal(state_dir / "requests.jsonl")
    kms_keys = KmsKeyStore(state_dir / "kms-keys.jsonl")
    started = time.monotonic()
    replayed = replay(moto_app, journal, kms_keys)
    print(
        f"aws emulator: replayed {replayed} journaled requests "
        f"in {time.monotonic() - started:.1f} s",
        flush=True,
    )
    compaction = compact(journal)
    if compaction.skipped:
        print(f"aws emulator: journal not compacted: {compaction.skipped}", flush=True)
    else:
        print(
            f"aws emulator: journal compacted from {compaction.requests_before} requests "
            f"({compaction.bytes_before / 2**20:.1f} MiB) to {compaction.requests_after} "
            f"({compaction.bytes_after / 2**20:.1f} MiB)",
            flush=True,
        )

    server = make_server(
        "127.0.0.1", args.port, JournalingApp(moto_app, journal, kms_keys), threaded=True
    )

    def stop(_signum: int, _frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"aws emulator listening on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
