"""Pure parts of the admin commands: requests, merging, tables, confirmation, CLI help."""

from __future__ import annotations

import argparse
import base64
from datetime import UTC, datetime

import pytest

from pds_aws.ops import admin, crawl, output, xrpc
from pds_aws.ops.commands import add_commands


def test_basic_auth_is_admin_colon_password() -> None:
    header = xrpc.basic_auth("s3cret")
    assert base64.b64decode(header.removeprefix("Basic ")) == b"admin:s3cret"


def test_query_string_repeats_list_params() -> None:
    qs = xrpc.query_string({"dids": ["did:plc:a", "did:plc:b"], "limit": 5, "x": None, "f": True})
    assert qs == "dids=did%3Aplc%3Aa&dids=did%3Aplc%3Ab&limit=5&f=true"


def test_error_from_body() -> None:
    err = xrpc.error_from_body("com.x", 400, b'{"error":"InvalidHandle","message":"bad"}')
    assert (err.status, err.error, err.message) == (400, "InvalidHandle", "bad")
    assert "HTTP 400" in str(err)
    err = xrpc.error_from_body("com.x", 502, b"<html>Bad Gateway</html>")
    assert err.error == "HTTP error" and "Bad Gateway" in err.message


def test_merge_accounts_keeps_list_order_and_status() -> None:
    repos = [
        {"did": "did:plc:b", "active": True},
        {"did": "did:plc:a", "active": False, "status": "takendown"},
    ]
    infos = [
        {"did": "did:plc:a", "handle": "a.test", "email": "a@x.io", "indexedAt": "2026"},
        {"did": "did:plc:b", "handle": "b.test"},
    ]
    accounts = admin.merge_accounts(repos, infos)
    assert [(a.handle, a.status) for a in accounts] == [
        ("b.test", "active"),
        ("a.test", "takendown"),
    ]
    assert accounts[1].row()["email"] == "a@x.io"


def test_takedown_body() -> None:
    now = datetime(2026, 11, 29, 21, 0, tzinfo=UTC)
    body = admin.takedown_body("did:plc:a", True, now)
    assert body == {
        "subject": {"$type": "com.atproto.admin.defs#repoRef", "did": "did:plc:a"},
        "takedown": {"applied": True, "ref": "pds-aws:2026-11-29T21:00:00Z"},
    }
    assert admin.takedown_body("did:plc:a", False)["takedown"] == {"applied": False}


def test_new_passwords_differ() -> None:
    assert admin.new_password() != admin.new_password()
    assert len(admin.new_password()) >= 20


def test_format_table_aligns_columns() -> None:
    table = output.format_table([{"a": "x", "b": "long value"}, {"a": "yyyy", "b": ""}], ["a", "b"])
    assert table.splitlines() == ["A     B", "x     long value", "yyyy"]
    assert output.format_table([], ["a"]) == "(none)"


def test_confirm() -> None:
    assert output.confirm("ok?", assume_yes=True, interactive=False)
    assert not output.confirm("ok?", assume_yes=False, interactive=False)
    assert output.confirm("ok?", assume_yes=False, ask=lambda _q: "y", interactive=True)
    assert not output.confirm("ok?", assume_yes=False, ask=lambda _q: "", interactive=True)


@pytest.mark.parametrize(
    ("relay", "base"),
    [("bsky.network", "https://bsky.network"), ("http://127.0.0.1:9/", "http://127.0.0.1:9")],
)
def test_relay_base(relay: str, base: str) -> None:
    assert crawl.relay_base(relay) == base


def _leaf_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [parser]
    return [leaf for sub in subs for p in sub.choices.values() for leaf in _leaf_parsers(p)]


def test_every_operator_command_has_help_and_a_handler() -> None:
    parser = argparse.ArgumentParser(prog="pds-aws")
    add_commands(parser.add_subparsers(dest="command", required=True))
    leaves = _leaf_parsers(parser)
    names = {leaf.prog.removeprefix("pds-aws ") for leaf in leaves}
    expected = {
        "admin account list",
        "admin account create",
        "admin account delete",
        "admin account takedown",
        "admin account untakedown",
        "admin account reset-password",
        "admin account update",
        "admin invites create",
        "request-crawl",
        "status",
        "backup drill",
        "backup restore",
        "smoke",
        "shell",
        "logs",
    }
    assert expected <= names
    for leaf in leaves:
        assert leaf.format_help()
        assert leaf.get_default("handler") is not None, leaf.prog
