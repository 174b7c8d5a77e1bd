"""A small XRPC client for the PDS's admin and server endpoints (HTTP basic auth `admin`).

The admin endpoints take the admin password as HTTP basic auth, so operator commands go
through the PDS's own API over HTTPS and never need a shell in the container.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from pds_aws.errors import PdsAwsError
from pds_aws.names import RATE_LIMIT_BYPASS_HEADER

DEFAULT_TIMEOUT_S = 30.0
ParamValue = str | int | bool | Sequence[str]


class XrpcError(PdsAwsError):
    """The PDS answered with an error (or did not answer)."""

    def __init__(self, nsid: str, status: int, error: str, message: str) -> None:
        self.nsid = nsid
        self.status = status
        self.error = error
        self.message = message
        detail = f"{error}: {message}" if message else error
        super().__init__(f"{nsid} failed (HTTP {status}) {detail}".rstrip())


def basic_auth(password: str) -> str:
    """The Authorization header value for the PDS admin user."""
    token = base64.b64encode(f"admin:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def query_string(params: Mapping[str, ParamValue | None]) -> str:
    """XRPC query parameters: lists repeat the key, booleans are lower-case."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        elif isinstance(value, str | int):
            pairs.append((key, str(value)))
        else:
            pairs.extend((key, item) for item in value)
    return urlencode(pairs)


def error_from_body(nsid: str, status: int, body: bytes) -> XrpcError:
    """An XrpcError from an XRPC error response (`{"error": ..., "message": ...}`)."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict):
        return XrpcError(nsid, status, str(data.get("error", "")), str(data.get("message", "")))
    text = body.decode("utf-8", "replace").strip()[:200]
    return XrpcError(nsid, status, "HTTP error", text)


@dataclass(frozen=True)
class Xrpc:
    """XRPC calls against one PDS; admin calls carry the admin password, and every call the
    rate-limit bypass key when one is given (operator tools may exceed the limits)."""

    base_url: str
    admin_password: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT_S
    rate_limit_bypass_key: str | None = field(default=None, repr=False)

    def _call(
        self,
        nsid: str,
        *,
        params: Mapping[str, ParamValue | None] | None,
        body: Mapping[str, Any] | None,
        admin: bool,
        method: str,
    ) -> dict[str, Any]:
        url = f"{self.base_url.rstrip('/')}/xrpc/{nsid}"
        if params:
            url = f"{url}?{query_string(params)}"
        headers = {"Accept": "application/json"}
        if self.rate_limit_bypass_key:
            headers[RATE_LIMIT_BYPASS_HEADER] = self.rate_limit_bypass_key
        data = None
        if method == "POST":
            data = json.dumps(body or {}).encode()
            headers["Content-Type"] = "application/json"
        if admin:
            if not self.admin_password:
                raise XrpcError(nsid, 0, "NoAdminPassword", "this call needs the admin password")
            headers["Authorization"] = basic_auth(self.admin_password)
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise error_from_body(nsid, exc.code, exc.read()) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise XrpcError(nsid, 0, "Unreachable", f"{self.base_url}: {reason}") from None
        if not raw:
            return {}
        result = json.loads(raw)
        return result if isinstance(result, dict) else {"value": result}

    def query(
        self,
        nsid: str,
        params: Mapping[str, ParamValue | None] | None = None,
        *,
        admin: bool = False,
    ) -> dict[str, Any]:
        return self._call(nsid, params=params, body=None, admin=admin, method="GET")

    def procedure(
        self, nsid: str, body: Mapping[str, Any] | None = None, *, admin: bool = False
    ) -> dict[str, Any]:
        return self._call(nsid, params=None, body=body, admin=admin, method="POST")
