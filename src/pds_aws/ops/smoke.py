"""`pds-aws smoke URL`: the checks a live PDS behind its edge must pass, one line each.

The public checks need no credentials: the edge's own answers (robots.txt, 403 outside the
allow-list), the PDS's public documents, an admin endpoint refusing anonymous calls and a
subscribeRepos websocket frame. With an account's handle and password the read path and the
write path (a post with an image, read back, then deleted) are checked through the real
`atproto` client.

`SMOKE_CHECKS` is the pure list; each check gets a `Probe` (how to reach the PDS) and returns
a detail line or raises `CheckFailed`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import struct
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pds_aws.errors import PdsAwsError
from pds_aws.names import RATE_LIMIT_BYPASS_HEADER
from pds_aws.routes import HEALTH_CHECK_PATH, ROBOTS_PATH, ROBOTS_TXT

# A path the allow-list must refuse: what exploit crawlers ask for first.
DENIED_PROBE_PATH = "/wp-login.php"
# An admin endpoint that must refuse calls without the admin password.
ADMIN_PROBE_PATH = "/xrpc/com.atproto.admin.getAccountInfos?dids=did:plc:pdsawssmoketest"
SUBSCRIBE_REPOS_PATH = "/xrpc/com.atproto.sync.subscribeRepos"
POST_COLLECTION = "app.bsky.feed.post"
DEFAULT_TIMEOUT_S = 15.0
FRAME_WAIT_S = 5.0


class CheckFailed(PdsAwsError):
    """A smoke check failed; the message says what was expected and what came back."""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CheckFailed(
                f"HTTP {self.status}, body is not JSON: {self.text[:120]!r}"
            ) from None
        if not isinstance(value, dict):
            raise CheckFailed(f"HTTP {self.status}, JSON is not an object")
        return value


# -- I/O: how a check reaches the PDS ------------------------------------------------------


def http_get(
    url: str, timeout: float = DEFAULT_TIMEOUT_S, headers: Mapping[str, str] | None = None
) -> HttpResponse:
    """GET without raising on error statuses (a 403 or 404 is an answer here)."""
    request = urllib.request.Request(
        url, headers={"User-Agent": "pds-aws-smoke", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return HttpResponse(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as exc:
        return HttpResponse(exc.code, dict(exc.headers), exc.read())
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise CheckFailed(f"no answer from {url}: {getattr(exc, 'reason', exc)}") from None


def websocket_url(base_url: str, path: str) -> str:
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    path_part, _, query = path.partition("?")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + path_part, query, ""))


def first_websocket_frame(url: str, wait: float = FRAME_WAIT_S) -> bytes | None:
    """Open the websocket and return its first binary frame, or None if none came in `wait` s.

    Raises CheckFailed when the upgrade itself fails.
    """
    import aiohttp

    async def read() -> bytes | None:
        timeout = aiohttp.ClientTimeout(total=wait + DEFAULT_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            try:
                ws = await session.ws_connect(url, timeout=aiohttp.ClientWSTimeout(ws_close=2))
            except aiohttp.WSServerHandshakeError as exc:
                raise CheckFailed(f"websocket upgrade refused: HTTP {exc.status}") from None
            except aiohttp.ClientError as exc:
                raise CheckFailed(f"websocket connection failed: {exc}") from None
            async with ws:
                try:
                    message = await ws.receive(timeout=wait)
                except TimeoutError:
                    return None
                if message.type == aiohttp.WSMsgType.BINARY:
                    return bytes(message.data)
                raise CheckFailed(f"expected a binary frame, got {message.type.name}")

    return asyncio.run(read())


@dataclass
class Probe:
    """What the checks use to reach one PDS; the account part only with credentials."""

    base_url: str
    handle: str | None = None
    password: str | None = field(default=None, repr=False)
    # May carry the bypass key in its headers (probe_with_key): kept out of repr.
    get: Callable[[str], HttpResponse] = field(default=http_get, repr=False)
    frame: Callable[[str], bytes | None] = first_websocket_frame
    # PDS_RATE_LIMIT_BYPASS_KEY: the login client sends it (pass `get` with the header too).
    rate_limit_bypass_key: str | None = field(default=None, repr=False)
    # Set by the login check, used by the read and write checks.
    client: Any = None
    did: str = ""

    def fetch(self, path: str) -> HttpResponse:
        return self.get(self.base_url.rstrip("/") + path)

    @property
    def has_account(self) -> bool:
        return bool(self.handle and self.password)


def probe_with_key(url: str, rate_limit_bypass_key: str | None, **fields: Any) -> Probe:
    """A probe whose every request (plain GETs and the login client's) carries the PDS's
    rate-limit bypass key when there is one: operator tools may exceed the limits."""
    get: Callable[[str], HttpResponse] = http_get
    if rate_limit_bypass_key:
        get = functools.partial(http_get, headers={RATE_LIMIT_BYPASS_HEADER: rate_limit_bypass_key})
    return Probe(url, get=get, rate_limit_bypass_key=rate_limit_bypass_key, **fields)


# -- pure verdicts ---------------------------------------------------------------------------


def expect_status(response: HttpResponse, status: int) -> None:
    if response.status != status:
        raise CheckFailed(f"expected HTTP {status}, got {response.status}: {response.text[:120]!r}")


def verify_root(response: HttpResponse) -> str:
    expect_status(response, 200)
    if "AT Protocol" not in response.text:
        raise CheckFailed(f"HTTP 200 but not the PDS home page: {response.text[:120]!r}")
    return "the PDS home page"


def verify_robots(response: HttpResponse) -> str:
    expect_status(response, 200)
    if response.text.strip() != ROBOTS_TXT.strip():
        raise CheckFailed(
            f"robots.txt is not the edge's disallow-all ({response.text.strip()[:80]!r}); "
            f"is the edge (ALB rules / local edge proxy) in front of the PDS?"
        )
    return "disallow-all from the edge"


def verify_health(response: HttpResponse) -> str:
    expect_status(response, 200)
    version = response.json().get("version")
    if not version:
        raise CheckFailed(f"no version in {response.text[:120]!r}")
    return f"version {version}"


def verify_protected_resource(response: HttpResponse) -> str:
    expect_status(response, 200)
    doc = response.json()
    servers = doc.get("authorization_servers")
    if not doc.get("resource") or not servers:
        raise CheckFailed("missing resource or authorization_servers")
    return f"resource {doc['resource']}, authorization server {servers[0]}"


def verify_authorization_server(response: HttpResponse) -> str:
    expect_status(response, 200)
    doc = response.json()
    missing = [k for k in ("issuer", "authorization_endpoint", "token_endpoint") if not doc.get(k)]
    if missing:
        raise CheckFailed(f"missing {', '.join(missing)}")
    return f"issuer {doc['issuer']}"


def verify_describe_server(response: HttpResponse) -> str:
    expect_status(response, 200)
    doc = response.json()
    did = str(doc.get("did", ""))
    if not did.startswith("did:") or not doc.get("availableUserDomains"):
        raise CheckFailed(f"no service DID or user domains in {response.text[:120]!r}")
    return f"{did}, handles under {', '.join(doc['availableUserDomains'])}"


def verify_list_repos(response: HttpResponse) -> str:
    expect_status(response, 200)
    repos = response.json().get("repos")
    if not isinstance(repos, list):
        raise CheckFailed("no repos list")
    return f"{len(repos)} repos on the first page"


def status_only(status: int, passed: str) -> Callable[[HttpResponse], str]:
    """A check that the status alone decides; `passed` is its line when it passes."""

    def verify(response: HttpResponse) -> str:
        expect_status(response, status)
        return passed

    return verify


verify_unknown_atproto_did = status_only(404, "404 for a host that is no handle")
verify_admin_refused = status_only(401, "401 without the admin password")
verify_denied = status_only(403, f"{DENIED_PROBE_PATH} refused by the allow-list")


def verify_frame(data: bytes | None, repo_count: int) -> str:
    """The first subscribeRepos frame decodes as an event-stream frame.

    A PDS that never had an account has no events to replay, so no frame is then expected.
    """
    if data is None:
        if repo_count:
            raise CheckFailed(
                f"no frame within {FRAME_WAIT_S:.0f} s although {repo_count} repos exist"
            )
        return "websocket open; no events yet (no accounts)"
    from atproto_subscription import Frame

    try:
        frame = Frame.from_bytes(data)
    except Exception as exc:  # the decoder raises its own and libipld's errors
        raise CheckFailed(f"first frame does not decode: {exc}") from None
    if frame.is_error:
        raise CheckFailed(f"error frame: {frame.body}")
    return f"first frame {frame.header.t}"


# -- the checks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Probe], str]
    needs_account: bool = False


def http_check(name: str, path: str, verify: Callable[[HttpResponse], str]) -> Check:
    return Check(name, lambda probe: verify(probe.fetch(path)))


def check_subscribe_repos(probe: Probe) -> str:
    repos = probe.fetch("/xrpc/com.atproto.sync.listRepos?limit=1").json().get("repos", [])
    url = websocket_url(probe.base_url, f"{SUBSCRIBE_REPOS_PATH}?cursor=0")
    return verify_frame(probe.frame(url), len(repos))


def check_login(probe: Probe) -> str:
    from atproto import Client
    from atproto_client.exceptions import AtProtocolError

    client = Client(base_url=f"{probe.base_url.rstrip('/')}/xrpc")
    if probe.rate_limit_bypass_key:
        client.request.add_additional_header(RATE_LIMIT_BYPASS_HEADER, probe.rate_limit_bypass_key)
    try:
        client.login(probe.handle, probe.password, fetch_bsky_profile=False)
    except AtProtocolError as exc:
        raise CheckFailed(f"login as {probe.handle} failed: {exc}") from None
    session = client._session
    if session is None:
        raise CheckFailed(f"login as {probe.handle} returned no session")
    # The client switches to the endpoint in the account's DID document; keep testing the URL
    # we were given (locally the DID document names the public hostname).
    client.update_base_url(f"{probe.base_url.rstrip('/')}/xrpc")
    probe.client = client
    probe.did = str(session.did)
    return f"{probe.handle} is {probe.did}"


def _client(probe: Probe) -> Any:
    if probe.client is None:
        raise CheckFailed("not logged in (the login check failed)")
    return probe.client


def check_read_path(probe: Probe) -> str:
    from atproto_client.exceptions import AtProtocolError

    client = _client(probe)
    try:
        repo = client.com.atproto.repo.describe_repo({"repo": probe.did})
        posts = client.com.atproto.repo.list_records(
            {"repo": probe.did, "collection": POST_COLLECTION, "limit": 5}
        )
    except AtProtocolError as exc:
        raise CheckFailed(f"reading the repo failed: {exc}") from None
    if repo.handle != probe.handle:
        raise CheckFailed(f"describeRepo names handle {repo.handle}, expected {probe.handle}")
    collections = len(repo.collections)
    return f"profile {repo.handle}, {collections} collections, {len(posts.records)} posts read"


def tiny_png() -> bytes:
    """A valid 1x1 PNG, so the write path uploads a real image without any file."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    pixels = zlib.compress(b"\x00\x1d\x9b\xf0")  # filter byte + one sky-blue pixel
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@contextmanager
def _cleanup_post(client: Any) -> Iterator[list[str]]:
    written: list[str] = []
    try:
        yield written
    finally:
        for uri in written:
            client.delete_post(uri)


def check_write_path(probe: Probe) -> str:
    from atproto_client.exceptions import AtProtocolError

    client = _client(probe)
    image = tiny_png()
    try:
        with _cleanup_post(client) as written:
            post = client.send_image(
                text="pds-aws smoke test (deleted right away)",
                image=image,
                image_alt="a one-pixel test image",
                profile_identify=probe.did,
            )
            written.append(post.uri)
            rkey = post.uri.rsplit("/", 1)[-1]
            record = client.com.atproto.repo.get_record(
                {"repo": probe.did, "collection": POST_COLLECTION, "rkey": rkey}
            )
            blob_cid = record.value.embed.images[0].image.ref.link
            blob = probe.fetch(f"/xrpc/com.atproto.sync.getBlob?did={probe.did}&cid={blob_cid}")
            expect_status(blob, 200)
            if blob.body != image:
                raise CheckFailed("the image read back differs from the one uploaded")
    except AtProtocolError as exc:
        raise CheckFailed(f"writing failed: {exc}") from None
    return f"posted with an image ({len(image)} bytes), read both back, deleted {post.uri}"


SMOKE_CHECKS: tuple[Check, ...] = (
    http_check("home page /", "/", verify_root),
    http_check("robots.txt", ROBOTS_PATH, verify_robots),
    http_check("health", HEALTH_CHECK_PATH, verify_health),
    http_check(
        "OAuth protected resource",
        "/.well-known/oauth-protected-resource",
        verify_protected_resource,
    ),
    http_check(
        "OAuth authorization server",
        "/.well-known/oauth-authorization-server",
        verify_authorization_server,
    ),
    http_check("atproto-did unknown host", "/.well-known/atproto-did", verify_unknown_atproto_did),
    http_check("describeServer", "/xrpc/com.atproto.server.describeServer", verify_describe_server),
    http_check("listRepos", "/xrpc/com.atproto.sync.listRepos", verify_list_repos),
    http_check("admin needs auth", ADMIN_PROBE_PATH, verify_admin_refused),
    Check("subscribeRepos websocket", check_subscribe_repos),
    http_check("outside the allow-list", DENIED_PROBE_PATH, verify_denied),
    Check("login", check_login, needs_account=True),
    Check("read path", check_read_path, needs_account=True),
    Check("write path", check_write_path, needs_account=True),
)


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name}: {self.detail}"


def run_checks(probe: Probe, checks: tuple[Check, ...] = SMOKE_CHECKS) -> list[CheckResult]:
    """Run every check that applies; a failure never stops the others."""
    results = []
    for check in checks:
        if check.needs_account and not probe.has_account:
            continue
        try:
            results.append(CheckResult(check.name, True, check.run(probe)))
        except CheckFailed as exc:
            results.append(CheckResult(check.name, False, str(exc)))
        except Exception as exc:  # a check's own bug or an odd answer is a failure too
            results.append(CheckResult(check.name, False, f"{type(exc).__name__}: {exc}"))
    return results
