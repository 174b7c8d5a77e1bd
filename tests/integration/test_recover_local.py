"""Recovery into a new stack, on the local runtime: `[recover]` adopts what a deleted `prod`
stack leaves behind (guides/DEPLOY.md, "Recover into a new stack").

A first runtime (the old stack) gets an account, a post and an image, and stops. Then everything
is wiped except what AWS retains in prod: the backup bucket, the blob bucket and the rotation
key, which stay in the local AWS (moto server), and the PLC directory (on AWS, the public
plc.directory). The PDS data directory, the local state and every secret are gone. A second
runtime with another stack name and `[recover]` naming the retained buckets and key starts
from that, and the `atproto` client checks that the account signs in with its old password,
its post and image are served, and a handle change, a PLC operation signed with the adopted
key, is accepted by the directory.

The public address (`.local/ports.json`) is kept too: on AWS the new stack serves the same
`[pds] domain`, which the DID documents name.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from atproto import Client, models

from helpers import make_config
from pds_aws.infra.synth import synthesize
from pds_aws.local.processes import free_port, start_process, tcp_open, wait_until
from pds_aws.local.runtime import LocalRuntime
from pds_aws.names import LOCAL_DIR
from pds_aws.ops.smoke import tiny_png

pytestmark = pytest.mark.integration

HANDLE, PASSWORD = "carol.test", "carol-pass-2468"


def plc_document(plc_url: str, did: str) -> dict[str, Any]:
    response = httpx.get(f"{plc_url}/{did}/data", timeout=10)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


def delete_every_secret(old: Path, new: Path) -> None:
    """Copy the old local AWS's state, then delete its secrets there: on AWS a new stack makes
    new ones (a `test`-mode stack's are deleted with it; a `prod` stack's belong to the old
    stack's name). The emulator is ours: the same front end the runtime starts."""
    shutil.copytree(old / LOCAL_DIR / "aws", new / LOCAL_DIR / "aws")
    port = free_port()
    emulator = start_process(
        "aws",
        [
            sys.executable,
            "-m",
            "pds_aws.local.aws_emulator",
            "--port",
            str(port),
            "--state-dir",
            str(new / LOCAL_DIR / "aws"),
        ],
        env=os.environ,
        log=new / "aws-wipe.log",
        cwd=new,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(emulator, tcp_open(port), timeout=120, what="listening")
        secrets = boto3.client(
            "secretsmanager",
            endpoint_url=url,
            region_name="us-east-2",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        for page in secrets.get_paginator("list_secrets").paginate():
            for secret in page["SecretList"]:
                # By name: the journal replays CreateSecret, and moto gives the replayed
                # secret a new random ARN suffix.
                secrets.delete_secret(SecretId=secret["Name"], ForceDeleteWithoutRecovery=True)
        assert secrets.list_secrets()["SecretList"] == []
    finally:
        emulator.stop(timeout=30)


def test_recover_adopts_the_retained_backup_blobs_and_rotation_key(tmp_path: Path) -> None:
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    old_dir.mkdir()
    old_config = make_config()
    old = LocalRuntime(old_dir, old_config, template=synthesize(old_config))
    state = old.start()
    try:
        invite = httpx.post(
            f"{state.url}/xrpc/com.atproto.server.createInviteCode",
            json={"useCount": 1},
            auth=("admin", state.admin_password),
            timeout=30,
        )
        assert invite.status_code == 200, invite.text
        did = (
            Client(state.url)
            .com.atproto.server.create_account(
                models.ComAtprotoServerCreateAccount.Data(
                    handle=HANDLE,
                    email="carol@example.com",
                    password=PASSWORD,
                    invite_code=invite.json()["code"],
                )
            )
            .did
        )
        carol = Client(state.url)
        carol.login(HANDLE, PASSWORD, fetch_bsky_profile=False)
        post = carol.send_post("written before the stack was deleted", profile_identify=did)
        image = tiny_png()
        image_post = carol.send_image(
            "kept in the blob bucket", image=image, image_alt="one pixel", profile_identify=did
        )
        # The directory accepts an operation only when a key its document lists signed it.
        rotation_keys = plc_document(state.plc_url, did)["rotationKeys"]
    finally:
        old.stop()
    assert old.exit_codes["backup"] == 0  # the final sync is in the retained backup bucket

    # What survives the stack: the retained buckets and key (in the local AWS), the PLC
    # directory, and the public address. Not the data, the state, or the secrets.
    (new_dir / LOCAL_DIR).mkdir(parents=True)
    delete_every_secret(old_dir, new_dir)
    shutil.copytree(old_dir / LOCAL_DIR / "plc", new_dir / LOCAL_DIR / "plc")
    shutil.copy2(old_dir / LOCAL_DIR / "ports.json", new_dir / LOCAL_DIR / "ports.json")
    backup_bucket = state.backup_url.removeprefix("s3://").split("/", 1)[0]
    recovered_config = make_config(
        aws={"stack_name": "BlueskyPdsRecovered"},
        recover={
            "backup_bucket": backup_bucket,
            "blob_bucket": state.blob_bucket,
            "rotation_key_arn": (
                f"arn:aws:kms:{state.region}:{old_config.aws.account}:key/{state.rotation_key_id}"
            ),
        },
    )
    template = synthesize(recovered_config)
    declared = {r["Type"] for r in template["Resources"].values()}
    assert not declared & {"AWS::S3::Bucket", "AWS::KMS::Key"}  # adopted, not created

    new = LocalRuntime(new_dir, recovered_config, template=template)
    recovered = new.start()
    try:
        assert recovered.admin_password != state.admin_password  # a new stack's secrets
        assert recovered.url == state.url
        carol = Client(recovered.url)
        carol.login(
            HANDLE, PASSWORD, fetch_bsky_profile=False
        )  # the account database came back from the backup
        record = carol.com.atproto.repo.get_record(
            {"repo": did, "collection": "app.bsky.feed.post", "rkey": post.uri.split("/")[-1]}
        )
        assert record.value.text == "written before the stack was deleted"
        image_record = carol.com.atproto.repo.get_record(
            {
                "repo": did,
                "collection": "app.bsky.feed.post",
                "rkey": image_post.uri.split("/")[-1],
            }
        )
        cid = image_record.value.embed.images[0].image.ref.link
        assert carol.com.atproto.sync.get_blob({"did": did, "cid": cid}) == image
        # A PLC operation signed with the adopted rotation key is accepted by the directory
        # (signed with any other key, the PDS's request would fail).
        carol.com.atproto.identity.update_handle({"handle": "carol2.test"})
        document = plc_document(recovered.plc_url, did)
        assert document["alsoKnownAs"] == ["at://carol2.test"]
        assert document["rotationKeys"] == rotation_keys
        assert json.loads(
            httpx.get(
                f"{recovered.url}/xrpc/com.atproto.identity.resolveHandle",
                params={"handle": "carol2.test"},
                timeout=10,
            ).text
        ) == {"did": did}
    finally:
        new.stop()
