"""The SES SMTP credentials handler: password derivation, URL encoding, custom-resource flow."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import sys
import types
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from helpers import make_config
from pds_aws.config import ConfigError
from pds_aws.email.construct import check_sender
from pds_aws.email.smtp_url import handler

# An example secret key (not a real one) whose SES SMTP password holds both '+' and '/'.
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY002"
ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
REGION = "us-east-2"


def _expected_password(secret_key: str, region: str) -> str:
    # The documented chain written out step by step, independent of the handler's loop.
    def sign(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    k = sign(b"AWS4" + secret_key.encode(), "11111111")
    k = sign(k, region)
    k = sign(k, "ses")
    k = sign(k, "aws4_request")
    k = sign(k, "SendRawEmail")
    return base64.b64encode(bytes([4]) + k).decode()


def test_smtp_password_follows_the_documented_derivation() -> None:
    password = handler.smtp_password(SECRET_KEY, REGION)
    assert password == _expected_password(SECRET_KEY, REGION)
    assert base64.b64decode(password)[0] == 4  # version byte
    assert handler.smtp_password(SECRET_KEY, "eu-west-1") != password  # region-bound


def test_derived_password_with_plus_and_slash_round_trips_through_the_url() -> None:
    password = handler.smtp_password(SECRET_KEY, REGION)
    assert "+" in password and "/" in password
    url = handler.smtp_url(ACCESS_KEY_ID, password, REGION)
    parts = urlsplit(url)
    assert parts.scheme == "smtps"
    assert parts.hostname == "email-smtp.us-east-2.amazonaws.com"
    assert parts.port == 465
    assert parts.username == ACCESS_KEY_ID
    assert parts.password is not None and unquote(parts.password) == password
    assert "+" not in parts.netloc and password not in url


@pytest.mark.parametrize("password", ["a+b/c=", "==/++", "plain"])
def test_any_base64_character_survives_the_url(password: str) -> None:
    # A derived password is 44 characters of 33 bytes, so it never pads with '='; the URL
    # must still carry '=' correctly.
    parts = urlsplit(handler.smtp_url(ACCESS_KEY_ID, password, REGION))
    assert parts.password is not None and unquote(parts.password) == password


class _FakeIam:
    class exceptions:
        class NoSuchEntityException(Exception):
            pass

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def create_access_key(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("create_access_key", kwargs))
        return {"AccessKey": {"AccessKeyId": ACCESS_KEY_ID, "SecretAccessKey": SECRET_KEY}}

    def delete_access_key(self, **kwargs: Any) -> None:
        self.calls.append(("delete_access_key", kwargs))


class _FakeSecrets:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def put_secret_value(self, SecretId: str, SecretString: str) -> None:
        self.values[SecretId] = SecretString


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> tuple[_FakeIam, _FakeSecrets]:
    iam, secrets = _FakeIam(), _FakeSecrets()
    fake_boto3 = types.ModuleType("boto3")
    fake_boto3.client = lambda name: {"iam": iam, "secretsmanager": secrets}[name]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "boto3", fake_boto3)
    return iam, secrets


def _event(request: str, physical_id: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "RequestType": request,
        "ResourceProperties": {"UserName": "smtp-user", "SecretId": "arn:secret", "Region": REGION},
    }
    if physical_id is not None:
        event["PhysicalResourceId"] = physical_id
    return event


def test_create_stores_the_url_and_never_returns_or_logs_the_secret(
    aws: tuple[_FakeIam, _FakeSecrets], caplog: pytest.LogCaptureFixture
) -> None:
    iam, secrets = aws
    caplog.set_level(logging.DEBUG)
    result = handler.on_event(_event("Create"))
    password = handler.smtp_password(SECRET_KEY, REGION)
    assert result["PhysicalResourceId"] == ACCESS_KEY_ID
    assert secrets.values == {"arn:secret": handler.smtp_url(ACCESS_KEY_ID, password, REGION)}
    assert iam.calls == [("create_access_key", {"UserName": "smtp-user"})]
    for text in (str(result), caplog.text):
        assert SECRET_KEY not in text and password not in text


def test_delete_removes_the_key_and_skips_placeholder_ids(
    aws: tuple[_FakeIam, _FakeSecrets],
) -> None:
    iam, _ = aws
    handler.on_event(_event("Delete", ACCESS_KEY_ID))
    handler.on_event(_event("Delete", "2f6c1e4e-failed-create-request-id"))
    assert iam.calls == [
        ("delete_access_key", {"UserName": "smtp-user", "AccessKeyId": ACCESS_KEY_ID})
    ]


def test_sender_outside_the_ses_identity_stops_synth_with_the_key() -> None:
    check_sender(make_config(pds={"email_from": "pds@mail.pds.example.com"}))  # subdomain
    check_sender(make_config())  # default noreply@<domain>
    with pytest.raises(ConfigError) as error:
        check_sender(make_config(pds={"email_from": "noreply@gmail.com"}))
    message = str(error.value)
    assert "pds.email_from = 'noreply@gmail.com'" in message
    assert "example: email_from = 'noreply@pds.example.com'" in message
