"""The backup store: S3 (boto3) or a local directory (`file://`), keyed relative to BACKUP_URL."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pds_aws.backup.plan import StoredObject
from pds_aws.backup.settings import BackupUrl, Settings
from pds_aws.errors import PdsAwsError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class StoreError(PdsAwsError):
    """The backup store cannot be read or written; the message says which and what to do."""


class BackupStore(Protocol):
    def check_access(self) -> None: ...
    def list_objects(self, prefix: str) -> list[StoredObject]: ...
    def get_bytes(self, key: str) -> bytes | None: ...
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def download(self, key: str, dest: Path) -> None: ...
    def upload(self, src: Path, key: str) -> None: ...
    def delete(self, key: str) -> None: ...
    def child_names(self, prefix: str) -> list[str]: ...


class S3Store:
    def __init__(self, url: BackupUrl, *, region: str | None, endpoint: str | None) -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        self.url = url
        # Short timeouts and few retries: an unreachable store must fail the start in seconds,
        # not after minutes, and the error must reach the log.
        self.client: S3Client = boto3.client(
            "s3",
            region_name=region,
            endpoint_url=endpoint,
            config=BotoConfig(
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
                s3={"addressing_style": "path"} if endpoint else None,
                max_pool_connections=32,
            ),
        )

    def _key(self, key: str) -> str:
        return f"{self.url.prefix}/{key}" if self.url.prefix else key

    def _explain(self, exc: Exception, action: str) -> StoreError:
        from botocore.exceptions import ClientError, EndpointConnectionError

        where = str(self.url)
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchBucket", "404") and "list" in action:
                return StoreError(
                    f"backup bucket {self.url.bucket!r} does not exist ({action} {where}); "
                    "check BACKUP_URL and that the stack created the bucket"
                )
            if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                return StoreError(
                    f"access denied to {where} ({action}: {code}); check the task role's "
                    "grants on the backup bucket prefix"
                )
            return StoreError(f"{action} {where} failed: {code or exc}")
        if isinstance(exc, EndpointConnectionError):
            return StoreError(
                f"backup store {where} is unreachable ({action}: {exc}); check the network "
                "(S3 gateway endpoint, security group) or AWS_ENDPOINT_URL_S3"
            )
        return StoreError(f"{action} {where} failed: {type(exc).__name__}: {exc}")

    def check_access(self) -> None:
        try:
            self.client.list_objects_v2(Bucket=self.url.bucket, Prefix=self._key(""), MaxKeys=1)
        except Exception as exc:
            raise self._explain(exc, "list") from exc

    def list_objects(self, prefix: str) -> list[StoredObject]:
        full = self._key(prefix)
        strip = len(self._key(""))
        out: list[StoredObject] = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.url.bucket, Prefix=full):
                for item in page.get("Contents", []):
                    out.append(
                        StoredObject(
                            key=item["Key"][strip:],
                            size=item.get("Size", 0),
                            last_modified=item["LastModified"].astimezone(UTC),
                        )
                    )
        except Exception as exc:
            raise self._explain(exc, "list") from exc
        return out

    def get_bytes(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.url.bucket, Key=self._key(key))
            return response["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise self._explain(exc, f"get {key}") from exc
        except Exception as exc:
            raise self._explain(exc, f"get {key}") from exc

    def put_bytes(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.url.bucket, Key=self._key(key), Body=data)
        except Exception as exc:
            raise self._explain(exc, f"put {key}") from exc

    def download(self, key: str, dest: Path) -> None:
        data = self.get_bytes(key)
        if data is None:
            raise StoreError(f"{key} vanished from {self.url} during the restore")
        _write_atomically(dest, data)

    def upload(self, src: Path, key: str) -> None:
        self.put_bytes(key, src.read_bytes())

    def child_names(self, prefix: str) -> list[str]:
        """Names one level below `prefix/` (like `ls`), without listing every object."""
        full = self._key(prefix.rstrip("/") + "/")
        names: list[str] = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.url.bucket, Prefix=full, Delimiter="/"):
                for common in page.get("CommonPrefixes", []):
                    names.append(common["Prefix"][len(full) :].rstrip("/"))
                for item in page.get("Contents", []):
                    names.append(item["Key"][len(full) :])
        except Exception as exc:
            raise self._explain(exc, "list") from exc
        return sorted(names)

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.url.bucket, Key=self._key(key))
        except Exception as exc:
            raise self._explain(exc, f"delete {key}") from exc


class FileStore:
    """A backup in a local directory, for the local runtime and tests without S3."""

    def __init__(self, url: BackupUrl) -> None:
        self.root = Path(url.prefix)
        self.url = url

    def check_access(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create backup directory {self.root}: {exc}") from exc

    def _walk(self, base: Path) -> Iterator[Path]:
        for dirpath, _dirs, names in os.walk(base):
            for name in names:
                yield Path(dirpath) / name

    def list_objects(self, prefix: str) -> list[StoredObject]:
        out: list[StoredObject] = []
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return out
        for path in self._walk(base if base.is_dir() else base.parent):
            key = path.relative_to(self.root).as_posix()
            if not key.startswith(prefix) or ".tmp-" in path.name:
                continue
            stat = path.stat()
            out.append(
                StoredObject(key, stat.st_size, datetime.fromtimestamp(stat.st_mtime, tz=UTC))
            )
        return out

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {self.root / key}: {exc}") from exc

    def put_bytes(self, key: str, data: bytes) -> None:
        try:
            _write_atomically(self.root / key, data)
        except OSError as exc:
            raise StoreError(f"cannot write {self.root / key}: {exc}") from exc

    def download(self, key: str, dest: Path) -> None:
        data = self.get_bytes(key)
        if data is None:
            raise StoreError(f"{self.root / key} vanished during the restore")
        _write_atomically(dest, data)

    def upload(self, src: Path, key: str) -> None:
        self.put_bytes(key, src.read_bytes())

    def child_names(self, prefix: str) -> list[str]:
        base = self.root / prefix
        return sorted(p.name for p in base.iterdir()) if base.is_dir() else []

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)


def _write_atomically(dest: Path, data: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def open_store(settings: Settings) -> BackupStore:
    if settings.backup_url.scheme == "file":
        return FileStore(settings.backup_url)
    return S3Store(settings.backup_url, region=settings.region, endpoint=settings.s3_endpoint)


__all__ = ["BackupStore", "FileStore", "S3Store", "StoreError", "open_store"]
