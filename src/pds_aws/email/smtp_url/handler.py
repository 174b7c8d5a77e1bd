"""Custom resource: SES SMTP credentials -> the PDS_EMAIL_SMTP_URL secret.

Create/Update: create an access key for the SMTP user, derive its SES SMTP password, write
`smtps://KEY_ID:PASSWORD@email-smtp.REGION.amazonaws.com:465` into the secret. The physical
id is the access key id, so an update that makes a new key leads CloudFormation to delete the
old one. Delete: delete the access key. Nothing secret is logged or returned.

Self-contained (standard library + boto3) because Lambda runs this file alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from typing import Any
from urllib.parse import quote

LOGGER = logging.getLogger(__name__)
LOGGER.setLevel(logging.INFO)

SMTP_PORT = 465  # implicit TLS: nodemailer's smtps:// scheme
_ACCESS_KEY_ID_RE = re.compile(r"^AKIA[A-Z0-9]{12,124}$")

# The SES SMTP password derivation (AWS SES developer guide, "Obtaining Amazon SES SMTP
# credentials"): a SigV4-style HMAC-SHA256 chain over fixed inputs, prefixed with version 4.
_SIGV4_DATE = "11111111"
_SERVICE = "ses"
_TERMINAL = "aws4_request"
_MESSAGE = "SendRawEmail"
_VERSION = b"\x04"


def _sign(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def smtp_password(secret_access_key: str, region: str) -> str:
    """The SES SMTP password for an IAM secret access key in `region`."""
    signature = _sign(("AWS4" + secret_access_key).encode("utf-8"), _SIGV4_DATE)
    for part in (region, _SERVICE, _TERMINAL, _MESSAGE):
        signature = _sign(signature, part)
    return base64.b64encode(_VERSION + signature).decode("ascii")


def smtp_endpoint(region: str) -> str:
    return f"email-smtp.{region}.amazonaws.com"


def smtp_url(username: str, password: str, region: str) -> str:
    """`PDS_EMAIL_SMTP_URL`: user and password percent-encoded (the password holds + / =)."""
    user = quote(username, safe="")
    secret = quote(password, safe="")
    return f"smtps://{user}:{secret}@{smtp_endpoint(region)}:{SMTP_PORT}"


def _is_access_key_id(value: str) -> bool:
    # A failed Create leaves CloudFormation with a placeholder physical id, not a key.
    return bool(_ACCESS_KEY_ID_RE.match(value))


def on_event(event: dict[str, Any], _context: Any = None) -> dict[str, Any]:
    """The CDK custom-resource provider's onEvent entry point."""
    import boto3  # only in Lambda: the pure functions above are tested without it

    props = event["ResourceProperties"]
    user_name: str = props["UserName"]
    request = event["RequestType"]
    iam = boto3.client("iam")

    if request == "Delete":
        key_id: str = event.get("PhysicalResourceId", "")
        if _is_access_key_id(key_id):
            try:
                iam.delete_access_key(UserName=user_name, AccessKeyId=key_id)
                LOGGER.info("deleted SES SMTP access key %s of %s", key_id, user_name)
            except iam.exceptions.NoSuchEntityException:
                LOGGER.info("access key %s of %s was already gone", key_id, user_name)
        return {"PhysicalResourceId": key_id}

    region: str = props["Region"]
    secret_id: str = props["SecretId"]
    access_key = iam.create_access_key(UserName=user_name)["AccessKey"]
    key_id = access_key["AccessKeyId"]
    url = smtp_url(key_id, smtp_password(access_key["SecretAccessKey"], region), region)
    boto3.client("secretsmanager").put_secret_value(SecretId=secret_id, SecretString=url)
    LOGGER.info(
        "%s: new SES SMTP access key %s of %s stored in the secret", request, key_id, user_name
    )
    return {"PhysicalResourceId": key_id, "Data": {"AccessKeyId": key_id}}
