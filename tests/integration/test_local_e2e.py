"""End to end: the local runtime, the real PDS through the edge, a crash, and a full restore.

Everything is real: the synthesized task definition, @atproto/pds on Node 24, the backup
sidecar with Litestream, moto server as AWS, the PLC directory, the SMTP sink, the edge proxy,
and the `atproto` client. The crash is SIGKILL to every process of the task at once.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from atproto import CAR, Client, FirehoseSubscribeReposClient, models, parse_subscribe_repos_message

from helpers import wait_until
from pds_aws.config import Config
from pds_aws.local.provision import rotation_public_key
from pds_aws.local.runtime import LocalRuntime
from pds_aws.local.smtp_sink import read_messages
from pds_aws.names import LocalState
from pds_aws.ops.smoke import tiny_png

pytestmark = pytest.mark.integration

WAIT_S = 60.0
PASSWORDS = {"alice": "alice-pass-1234", "bob": "bob-pass-5678"}


def http_status(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def login(url: str, handle: str, password: str) -> Client:
    client = Client(url)
    client.login(handle, password, fetch_bsky_profile=False)
    return client


def backup_status(runtime: LocalRuntime) -> dict[str, Any]:
    env = runtime.container_envs["backup"]
    done = subprocess.run(
        [str(runtime.paths.bin_dir / "pds-aws-backup"), "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def plc_document(state: LocalState, did: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{state.plc_url}/{did}/data", timeout=10) as response:
        data: dict[str, Any] = json.loads(response.read())
    return data


def collect_firehose(url: str, dids: set[str], timeout: float = 30.0) -> set[str]:
    """Repos seen in #commit events on subscribeRepos (through the edge), from the start."""
    seen: set[str] = set()
    client = FirehoseSubscribeReposClient(
        params=models.ComAtprotoSyncSubscribeRepos.Params(cursor=0),
        base_uri=url.replace("http://", "ws://") + "/xrpc",
    )

    def on_message(message: Any) -> None:
        commit = parse_subscribe_repos_message(message)
        if isinstance(commit, models.ComAtprotoSyncSubscribeRepos.Commit):
            seen.add(commit.repo)
            if dids <= seen:
                client.stop()

    thread = threading.Thread(target=client.start, args=(on_message,), daemon=True)
    thread.start()
    thread.join(timeout)
    client.stop()
    return seen


def test_crash_and_restore_end_to_end(
    tmp_path: Path, example_config: Config, stack_template: dict[str, Any]
) -> None:
    runtime = LocalRuntime(tmp_path, example_config, template=stack_template)
    state = runtime.start()
    try:
        url = state.url
        assert json.loads((tmp_path / ".local/state.json").read_text())["url"] == url

        # The edge applies the ALB route table.
        assert http_status(f"{url}/wp-login.php")[0] == 403
        assert http_status(f"{url}/robots.txt") == (200, "User-agent: *\nDisallow: /\n")
        assert http_status(f"{url}/xrpc/_health")[0] == 200

        # Accounts (the example config requires invites: the admin mints one).
        invite = httpx.post(
            f"{url}/xrpc/com.atproto.server.createInviteCode",
            json={"useCount": 2},
            auth=("admin", state.admin_password),
            timeout=30,
        )
        assert invite.status_code == 200, invite.text
        dids: dict[str, str] = {}
        for name, password in PASSWORDS.items():
            created = Client(url).com.atproto.server.create_account(
                models.ComAtprotoServerCreateAccount.Data(
                    handle=f"{name}.test",
                    email=f"{name}@example.com",
                    password=password,
                    invite_code=invite.json()["code"],
                )
            )
            dids[name] = created.did
        alice = login(url, "alice.test", PASSWORDS["alice"])
        bob = login(url, "bob.test", PASSWORDS["bob"])

        # Records and a blob.
        post = alice.send_post("hello from the local runtime", profile_identify=dids["alice"])
        image = tiny_png()
        image_post = alice.send_image(
            "a picture", image=image, image_alt="one pixel", profile_identify=dids["alice"]
        )
        # Client.follow needs the app view's profile; create the record directly.
        follow = bob.app.bsky.graph.follow.create(
            dids["bob"],
            models.AppBskyGraphFollow.Record(
                subject=dids["alice"], created_at=bob.get_current_time_iso()
            ),
        )
        record = alice.com.atproto.repo.get_record(
            {
                "repo": dids["alice"],
                "collection": "app.bsky.feed.post",
                "rkey": post.uri.split("/")[-1],
            }
        )
        assert record.value.text == "hello from the local runtime"
        image_record = alice.com.atproto.repo.get_record(
            {
                "repo": dids["alice"],
                "collection": "app.bsky.feed.post",
                "rkey": image_post.uri.split("/")[-1],
            }
        )
        blob_cid = image_record.value.embed.images[0].image.ref.link
        assert alice.com.atproto.sync.get_blob({"did": dids["alice"], "cid": blob_cid}) == image
        follows = bob.com.atproto.repo.list_records(
            {"repo": dids["bob"], "collection": "app.bsky.graph.follow"}
        )
        assert [r.value.subject for r in follows.records] == [dids["alice"]]

        # The firehose, through the edge's websocket pass-through.
        assert collect_firehose(url, set(dids.values())) >= set(dids.values())

        # E-mail confirmation with the code the SMTP sink filed.
        alice.com.atproto.server.request_email_confirmation()
        mail_dir = Path(state.mail_dir)
        messages = wait_until(lambda: read_messages(mail_dir), WAIT_S, "the confirmation e-mail")
        body = (
            messages[-1].get_payload(decode=True)
            if not messages[-1].is_multipart()
            else b"".join(part.get_payload(decode=True) or b"" for part in messages[-1].walk())
        )
        assert messages[-1]["To"] == "alice@example.com"
        code = re.search(r"\b[A-Z0-9]{5}-[A-Z0-9]{5}\b", body.decode())
        assert code, body
        alice.com.atproto.server.confirm_email(
            {"email": "alice@example.com", "token": code.group(0)}
        )
        assert alice.com.atproto.server.get_session().email_confirmed is True

        # What must come back: signing keys (PLC documents) and the KMS rotation key.
        documents = {name: plc_document(state, did) for name, did in dids.items()}
        rotation_key = rotation_public_key(state.moto_url, state.region, state.rotation_key_id)
        repo_before = alice.com.atproto.sync.get_latest_commit({"did": dids["alice"]})

        # Let the sidecar replicate everything acknowledged so far, then crash the task.
        acknowledged = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        wait_until(
            lambda: (
                (status := backup_status(runtime))["newest_change"]
                and status["newest_change"] >= acknowledged
                and status["database_count"] >= 5
            ),
            WAIT_S,
            "the backup to hold every write",
        )
        pids = dict(state.pids)
    finally:
        runtime.kill()
    for name, pid in pids.items():
        assert not Path(f"/proc/{pid}").exists(), f"{name} (pid {pid}) survived SIGKILL"

    # A replacement task: empty data volume, everything restored from the backup.
    runtime = LocalRuntime(tmp_path, example_config, template=stack_template)
    state = runtime.start()
    try:
        url = state.url
        assert not list(Path(state.data_dir).glob("**/*.pre-restore"))
        alice = login(url, "alice.test", PASSWORDS["alice"])
        bob = login(url, "bob.test", PASSWORDS["bob"])
        assert alice.com.atproto.server.get_session().email_confirmed is True
        posts = alice.com.atproto.repo.list_records(
            {"repo": dids["alice"], "collection": "app.bsky.feed.post"}
        )
        assert {r.uri for r in posts.records} == {post.uri, image_post.uri}
        assert alice.com.atproto.sync.get_blob({"did": dids["alice"], "cid": blob_cid}) == image
        follows = bob.com.atproto.repo.list_records(
            {"repo": dids["bob"], "collection": "app.bsky.graph.follow"}
        )
        assert [r.uri for r in follows.records] == [follow.uri]
        assert (
            alice.com.atproto.sync.get_latest_commit({"did": dids["alice"]}).cid == repo_before.cid
        )
        for name, did in dids.items():
            assert plc_document(state, did) == documents[name]
        assert (
            rotation_public_key(state.moto_url, state.region, state.rotation_key_id) == rotation_key
        )

        # The repository still verifies: a new commit is signed with the restored key...
        new_post = alice.send_post("after the crash", profile_identify=dids["alice"])
        latest = alice.com.atproto.sync.get_latest_commit({"did": dids["alice"]})
        assert latest.cid != repo_before.cid
        car = CAR.from_bytes(alice.com.atproto.sync.get_repo({"did": dids["alice"]}))
        assert str(car.root) == latest.cid
        assert new_post.cid in {str(cid) for cid in car.blocks}
        # ...and a PLC operation is signed with the restored KMS rotation key.
        alice.com.atproto.identity.update_handle({"handle": "alice2.test"})
        assert plc_document(state, dids["alice"])["alsoKnownAs"] == ["at://alice2.test"]

        assert http_status(f"{url}/.env")[0] == 403
    finally:
        runtime.stop()
    assert runtime.exit_codes["pds"] == 0  # SIGTERM reached the PDS: a clean shutdown
    assert runtime.exit_codes["backup"] == 0  # final sync done
