"""The real PDS behind the local edge: the version pair, /tls-check, handle subdomains, and
rate limits keyed on the client's address as the edge passes it on.

One local runtime (the synthesized task definition, @atproto/pds 0.5.26 on Node 24, moto, PLC,
the backup sidecar, the edge) serves every case of this module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pds_aws.config import load_config
from pds_aws.infra.synth import synthesize
from pds_aws.local.runtime import LocalRuntime
from pds_aws.names import (
    PDS_CONTAINER,
    RATE_LIMIT_BYPASS_HEADER,
    RATE_LIMIT_BYPASS_LOG_PATTERN,
    LocalState,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "edge-pass-1234"
# More login attempts than the PDS allows one account from one address in 5 minutes (30,
# @atproto/pds api/com/atproto/server/createSession.js); the loop stops at the first 429.
LOGIN_FLOOD_LIMIT = 40


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    config = load_config(ROOT / "pds.example.toml")
    local = LocalRuntime(tmp_path_factory.mktemp("edge"), config, template=synthesize(config))
    local.start()
    try:
        yield local
    finally:
        local.stop()


def runtime_state(runtime: LocalRuntime) -> LocalState:
    assert runtime.state is not None
    return runtime.state


def client_from(address: str) -> httpx.Client:
    """An HTTP client whose connections leave from `address` (any of 127.0.0.0/8)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=60)


def create_account(state: LocalState, name: str) -> str:
    url = state.url
    with client_from("127.0.0.1") as http:
        bypass = {RATE_LIMIT_BYPASS_HEADER: state.rate_limit_bypass_key}
        invite = http.post(
            f"{url}/xrpc/com.atproto.server.createInviteCode",
            json={"useCount": 1},
            auth=("admin", state.admin_password),
            headers=bypass,
        )
        assert invite.status_code == 200, invite.text
        created = http.post(
            f"{url}/xrpc/com.atproto.server.createAccount",
            json={
                "handle": f"{name}.test",
                "email": f"{name}@example.com",
                "password": PASSWORD,
                "inviteCode": invite.json()["code"],
            },
            headers=bypass,
        )
        assert created.status_code == 200, created.text
        return str(created.json()["did"])


def login(
    http: httpx.Client, url: str, handle: str, password: str, bypass_key: str | None = None
) -> int:
    answer = http.post(
        f"{url}/xrpc/com.atproto.server.createSession",
        json={"identifier": handle, "password": password},
        headers={RATE_LIMIT_BYPASS_HEADER: bypass_key} if bypass_key else {},
    )
    return answer.status_code


def test_local_pds_is_the_package_the_image_carries(runtime: LocalRuntime) -> None:
    state = runtime_state(runtime)
    assert state.pds_version == "0.5.26"
    assert not [w for w in state.warnings if "behaviour may differ" in w]
    health = httpx.get(f"{state.url}/xrpc/_health", timeout=30)
    assert health.json()["version"] == "0.5.26"


def test_tls_check_answers_like_the_image(runtime: LocalRuntime) -> None:
    """The official image's service/index.js adds GET /tls-check?domain=HOST after
    pds.start() (bluesky-social/pds): the installer's Caddy asks it on the PDS's own port
    before issuing an on-demand certificate."""
    state = runtime_state(runtime)
    create_account(state, "tls")
    pds = state.pds_url

    def check(query: str) -> int:
        return httpx.get(f"{pds}/tls-check{query}", timeout=30).status_code

    assert check("?domain=localhost") == 200  # the PDS hostname (locally: localhost)
    assert check("?domain=tls.test") == 200  # an existing handle
    assert check("?domain=nobody.test") == 404  # a handle domain, no such account
    assert check("?domain=example.com") == 400  # not a handle domain of this PDS
    assert check("") == 400
    # Like the ALB, the edge keeps it private: it is not in the route table.
    assert httpx.get(f"{state.url}/tls-check?domain=tls.test", timeout=30).status_code == 403


def test_handle_subdomain_resolves_its_did_through_the_edge(runtime: LocalRuntime) -> None:
    """https://alice.<domain>/.well-known/atproto-did reaches the PDS with its Host, from which
    the PDS reads the handle (@atproto/pds well-known.js uses req.hostname)."""
    state = runtime_state(runtime)
    did = create_account(state, "alice")
    url = f"{state.url}/.well-known/atproto-did"
    answer = httpx.get(url, headers={"Host": "alice.test"}, timeout=30)
    assert (answer.status_code, answer.text) == (200, did)
    assert httpx.get(url, headers={"Host": "nobody.test"}, timeout=30).status_code == 404


def test_login_flood_is_limited_per_client_address(runtime: LocalRuntime) -> None:
    """With PDS_RATE_LIMITS_ENABLED the PDS keys login limits on `<identifier>-<req.ip>`; express
    derives req.ip from X-Forwarded-For because it trusts loopback and private proxies ('trust
    proxy' in @atproto/pds dist/index.js). So the edge must pass the client's address, as the
    ALB does: a flood from 127.0.0.1 is refused while the same account logs in from 127.0.0.2."""
    state = runtime_state(runtime)
    create_account(state, "flood")
    url = state.url
    with client_from("127.0.0.1") as flooder, client_from("127.0.0.2") as other:
        statuses = []
        for _ in range(LOGIN_FLOOD_LIMIT):
            statuses.append(login(flooder, url, "flood.test", "wrong-password"))
            if statuses[-1] == 429:
                break
        assert statuses[-1] == 429, statuses
        assert set(statuses[:-1]) == {401}
        assert login(flooder, url, "flood.test", PASSWORD) == 429
        assert login(other, url, "flood.test", PASSWORD) == 200
        # Operator tools carry the bypass key; a wrong key does not help.
        key = state.rate_limit_bypass_key
        assert login(flooder, url, "flood.test", PASSWORD, bypass_key=key) == 200
        assert login(flooder, url, "flood.test", PASSWORD, bypass_key=key + "x") == 429


def test_bypass_key_is_kept_out_of_process_arguments(runtime: LocalRuntime) -> None:
    key = runtime_state(runtime).rate_limit_bypass_key
    assert len(key) >= 32
    for pid in runtime_state(runtime).pids.values():
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        assert key not in cmdline
    state_file = runtime.paths.state
    assert json.loads(state_file.read_text())["rate_limit_bypass_key"] == key
    assert state_file.stat().st_mode & 0o077 == 0


def test_the_log_mask_hides_the_bypass_key_in_the_pds_request_log(runtime: LocalRuntime) -> None:
    """The PDS logs every request header but authorization and dpop (@atproto/pds
    dist/logger.js `reqSerializer`, @atproto/common `obfuscateHeaders`), so a request carrying
    the bypass key writes it into the log. On AWS the PDS log group's data protection policy
    masks what RATE_LIMIT_BYPASS_LOG_PATTERN matches (tests/template/test_log_masking.py); here
    the pattern runs over the real PDS's own log lines. No key is printed on failure."""
    key = runtime_state(runtime).rate_limit_bypass_key
    url = runtime_state(runtime).url
    with client_from("127.0.0.1") as http:
        assert login(http, url, "nobody.test", "wrong-password", bypass_key=key) in {400, 401}
    log = (runtime.paths.logs / f"{PDS_CONTAINER}.log").read_text(errors="replace")
    logged = [line for line in log.splitlines() if key in line]
    assert logged, "the PDS no longer logs the bypass header: the mask may be unnecessary"
    masked = [re.sub(RATE_LIMIT_BYPASS_LOG_PATTERN, "***", line) for line in logged]
    leaks = sum(key in line for line in masked)
    assert leaks == 0, f"{leaks} of {len(logged)} PDS log lines keep the key after the mask"
    assert all(f"{RATE_LIMIT_BYPASS_HEADER}" not in line for line in masked)
