"""The backup store: S3 (boto3) or a local directory (`file://`), keyed relative to BACKUP_URL."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pds_aws.backup.plan import StoredObject
from pds_aws.backup.settings import BackupUrl, Settings
from pds_aws.errors import PdsAwsError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef


class StoreError(PdsAwsError):
    """The backup store cannot be read or written; the message says which and what to do."""


class PreconditionFailed(StoreError):
    """A conditional write lost: the object exists (If-None-Match) or changed (If-Match)."""


@dataclass(frozen=True)
class TaggedObject:
    """An object's bytes, its ETag, and its age by the store's own clock (no clock skew)."""

    data: bytes
    etag: str
    age_s: float


class BackupStore(Protocol):
    def check_access(self) -> None: ...
    def list_objects(self, prefix: str) -> list[StoredObject]: ...
    def get_bytes(self, key: str) -> bytes | None: ...
    def put_bytes(self, key: str, data: bytes) -> str | None: ...
    def download(self, key: str, dest: Path) -> None: ...
    def delete(self, key: str) -> None: ...
    def child_names(self, prefix: str) -> list[str]: ...
    def get_tagged(self, key: str) -> TaggedObject | None: ...
    def put_conditional(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str: ...


class _FileTransfers:
    """download, written once over each store's get_bytes."""

    def get_bytes(self, key: str) -> bytes | None:
        raise NotImplementedError

    def location(self, key: str) -> str:
        """Where the object `key` is, for messages."""
        raise NotImplementedError

    def download(self, key: str, dest: Path) -> None:
        data = self.get_bytes(key)
        if data is None:
            raise StoreError(f"{self.location(key)} vanished during the restore")
        _write_atomically(dest, data)


class S3Store(_FileTransfers):
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
                            etag=item.get("ETag"),
                        )
                    )
        except Exception as exc:
            raise self._explain(exc, "list") from exc
        return out

    def _get(self, key: str) -> tuple[bytes, GetObjectOutputTypeDef] | None:
        """The object's bytes and S3's response, or None if there is no such object."""
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.url.bucket, Key=self._key(key))
            return response["Body"].read(), response
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise self._explain(exc, f"get {key}") from exc
        except Exception as exc:
            raise self._explain(exc, f"get {key}") from exc

    def get_bytes(self, key: str) -> bytes | None:
        found = self._get(key)
        return None if found is None else found[0]

    def put_bytes(self, key: str, data: bytes) -> str | None:
        """Returns the object's ETag, the one its listing reports until it is written again."""
        try:
            response = self.client.put_object(Bucket=self.url.bucket, Key=self._key(key), Body=data)
        except Exception as exc:
            raise self._explain(exc, f"put {key}") from exc
        return response.get("ETag")

    def get_tagged(self, key: str) -> TaggedObject | None:
        found = self._get(key)
        if found is None:
            return None
        data, response = found
        # Age by S3's clock: the response's Date minus the object's LastModified.
        date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        now = parsedate_to_datetime(date) if date else datetime.now(UTC)
        age = (now - response["LastModified"]).total_seconds()
        return TaggedObject(data, response["ETag"], max(age, 0.0))

    def put_conditional(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        """S3 conditional write (If-None-Match: * to create, If-Match: ETag to replace);
        returns the new ETag, raises PreconditionFailed when the condition does not hold."""
        from botocore.exceptions import ClientError

        extra: dict[str, str] = {}
        if if_none_match:
            extra["IfNoneMatch"] = "*"
        if if_match is not None:
            extra["IfMatch"] = if_match
        try:
            response = self.client.put_object(
                Bucket=self.url.bucket,
                Key=self._key(key),
                Body=data,
                **extra,  # type: ignore[arg-type]
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            # 412: the condition does not hold; 409: a concurrent conditional write won.
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (
                409,
                412,
            ):
                raise PreconditionFailed(f"{key} changed meanwhile ({code or status})") from exc
            raise self._explain(exc, f"put {key}") from exc
        except Exception as exc:
            raise self._explain(exc, f"put {key}") from exc
        return str(response["ETag"])

    def location(self, key: str) -> str:
        return f"{self.url}/{key}"

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


class FileStore(_FileTransfers):
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
            if not key.startswith(prefix) or path.name.startswith("."):
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

    def put_bytes(self, key: str, data: bytes) -> str | None:
        """None: this store's listing reports no ETag (it would have to read every file)."""
        try:
            _write_atomically(self.root / key, data)
        except OSError as exc:
            raise StoreError(f"cannot write {self.root / key}: {exc}") from exc
        return None

    def location(self, key: str) -> str:
        return str(self.root / key)

    def get_tagged(self, key: str) -> TaggedObject | None:
        path = self.root / key
        try:
            data = path.read_bytes()
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc}") from exc
        return TaggedObject(data, _etag(data), max(datetime.now(UTC).timestamp() - mtime, 0.0))

    def put_conditional(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        """The same conditions as S3's, checked and written under an exclusive file lock."""
        path = self.root / key
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with (path.parent / f".{path.name}.lock").open("a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    current = path.read_bytes()
                except FileNotFoundError:
                    current = None
                if if_none_match and current is not None:
                    raise PreconditionFailed(f"{key} exists")
                if if_match is not None and (current is None or _etag(current) != if_match):
                    raise PreconditionFailed(f"{key} changed meanwhile")
                _write_atomically(path, data)
        except PreconditionFailed:
            raise
        except OSError as exc:
            raise StoreError(f"cannot write {path}: {exc}") from exc
        return _etag(data)

    def child_names(self, prefix: str) -> list[str]:
        base = self.root / prefix
        return sorted(p.name for p in base.iterdir()) if base.is_dir() else []

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)


def _etag(data: bytes) -> str:
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


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


__all__ = [
    "BackupStore",
    "FileStore",
    "PreconditionFailed",
    "S3Store",
    "StoreError",
    "TaggedObject",
    "open_store",
]
