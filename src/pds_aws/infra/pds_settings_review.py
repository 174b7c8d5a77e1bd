"""The PDS settings the stack leaves unset, each with the reason: reviewed, not forgotten.

@atproto/pds reads its settings from `PDS_*` environment variables (its
`dist/config/env.js`, `readEnv`). The stack sets some (infra/service.py); every other name the
installed PDS reads is listed here with why it stays at the PDS's default. A test
(tests/template/test_pds_env_names.py) parses the installed PDS's env.js and fails when the
stack sets a name the PDS does not read, or when a name the PDS reads is neither set nor listed
here (a PDS upgrade that adds a setting), so each new setting gets a decision.

Reviewed against @atproto/pds 0.5.26.
"""

from __future__ import annotations

_BRANDING = "branding of the sign-in pages and describeServer; the PDS's defaults (none)"
_ENTRYWAY = "entryway mode is Bluesky's own multi-PDS setup; a self-hosted PDS has none"
_DERIVED = (
    "derived from PDS_DATA_DIRECTORY: the layout the backup sidecar restores "
    "(pds_aws/backup/layout.py)"
)
_DEFAULT = "the PDS's default suits one small PDS"
_TASK_ROLE = "the task role's temporary credentials, never static keys"

UNSET_PDS_SETTINGS: dict[str, str] = {
    # service
    "PDS_SERVICE_DID": "default did:web:<hostname>, the identity of a PDS on its own domain",
    "PDS_SERVICE_NAME": _BRANDING,
    "PDS_VERSION": "the image's service/index.js (and our launcher) set it from the package",
    "PDS_HOME_URL": _BRANDING,
    "PDS_LOGO_URL": _BRANDING,
    "PDS_PRIVACY_POLICY_URL": _BRANDING,
    "PDS_SUPPORT_URL": _BRANDING,
    "PDS_TERMS_OF_SERVICE_URL": _BRANDING,
    "PDS_ACCEPTING_REPO_IMPORTS": "default true: accounts can migrate into this PDS",
    "PDS_MAX_REPO_IMPORT_SIZE": _DEFAULT,
    "PDS_DEV_MODE": "must stay off on AWS (it allows plain http and relaxes SSRF protection); "
    "only the local runtime sets it",
    "PDS_HCAPTCHA_SITE_KEY": "no captcha on sign-up: invite codes guard it (invite_required)",
    "PDS_HCAPTCHA_SECRET_KEY": "no captcha on sign-up: invite codes guard it (invite_required)",
    "PDS_HCAPTCHA_TOKEN_SALT": "no captcha on sign-up: invite codes guard it (invite_required)",
    "PDS_OAUTH_TRUSTED_CLIENTS": "no OAuth client is trusted beyond the PDS's defaults",
    "PDS_PRIMARY_COLOR": _BRANDING,
    "PDS_ERROR_COLOR": _BRANDING,
    "PDS_WARNING_COLOR": _BRANDING,
    "PDS_INFO_COLOR": _BRANDING,
    "PDS_SUCCESS_COLOR": _BRANDING,
    "PDS_BACKGROUND_LIGHT_URL": _BRANDING,
    "PDS_BACKGROUND_DARK_URL": _BRANDING,
    # databases
    "PDS_ACCOUNT_DB_LOCATION": _DERIVED,
    "PDS_SEQUENCER_DB_LOCATION": _DERIVED,
    "PDS_DID_CACHE_DB_LOCATION": _DERIVED,
    "PDS_ACTOR_STORE_DIRECTORY": _DERIVED,
    "PDS_ACTOR_STORE_CACHE_SIZE": _DEFAULT,
    # blobs
    "PDS_BLOBSTORE_S3_ENDPOINT": "AWS's own S3 endpoint; only the local runtime points it at moto",
    "PDS_BLOBSTORE_S3_FORCE_PATH_STYLE": "virtual-hosted addressing on AWS; local runtime only",
    "PDS_BLOBSTORE_S3_ACCESS_KEY_ID": _TASK_ROLE,
    "PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY": _TASK_ROLE,
    "PDS_BLOBSTORE_S3_REQUEST_TIMEOUT_MS": _DEFAULT,
    "PDS_BLOBSTORE_DISK_LOCATION": "blobs live in S3, never on task disk (both is an error)",
    "PDS_BLOBSTORE_DISK_TMP_LOCATION": "blobs live in S3, never on task disk",
    # identity
    "PDS_DID_CACHE_STALE_TTL": _DEFAULT,
    "PDS_DID_CACHE_MAX_TTL": _DEFAULT,
    "PDS_ID_RESOLVER_TIMEOUT": _DEFAULT,
    "PDS_RECOVERY_DID_KEY": "no operator-wide recovery key; each user may add their own",
    "PDS_HANDLE_BACKUP_NAMESERVERS": "the VPC's resolver answers handle TXT lookups",
    "PDS_ENABLE_DID_DOC_WITH_SESSION": _DEFAULT,
    # entryway
    "PDS_ENTRYWAY_URL": _ENTRYWAY,
    "PDS_ENTRYWAY_DID": _ENTRYWAY,
    "PDS_ENTRYWAY_JWT_VERIFY_KEY_K256_PUBLIC_KEY_HEX": _ENTRYWAY,
    "PDS_ENTRYWAY_PLC_ROTATION_KEY": _ENTRYWAY,
    "PDS_ENTRYWAY_ADMIN_TOKEN": _ENTRYWAY,
    # invites and e-mail
    "PDS_INVITE_INTERVAL": "no periodic invite codes for users; the operator mints them "
    "(`pds-aws admin invites create`)",
    "PDS_INVITE_EPOCH": "no periodic invite codes for users (see PDS_INVITE_INTERVAL)",
    "PDS_EMAIL_DISABLE_CONFIRMATION_LINK": _DEFAULT,
    "PDS_MODERATION_EMAIL_SMTP_URL": "no moderation mailbox: admin e-mails go out through "
    "PDS_EMAIL_SMTP_URL",
    "PDS_MODERATION_EMAIL_ADDRESS": "no moderation mailbox (see PDS_MODERATION_EMAIL_SMTP_URL)",
    # firehose
    "PDS_MAX_SUBSCRIPTION_BUFFER": _DEFAULT,
    "PDS_REPO_BACKFILL_LIMIT_MS": "default one day of firehose backfill, what relays expect",
    # services
    "PDS_BSKY_APP_VIEW_CDN_URL_PATTERN": _DEFAULT,
    "PDS_MOD_SERVICE_URL": "Bluesky's moderation is reached through the report service (set)",
    "PDS_MOD_SERVICE_DID": "Bluesky's moderation is reached through the report service (set)",
    # rate limits
    "PDS_RATE_LIMIT_BYPASS_IPS": "operator tools bypass with the key (PDS_RATE_LIMIT_BYPASS_KEY); "
    "an address listed here would also be trusted for X-Forwarded-For",
    "PDS_REDIS_SCRATCH_ADDRESS": "one task: the in-memory rate limiter suffices, no Redis to pay",
    "PDS_REDIS_SCRATCH_PASSWORD": "no Redis (see PDS_REDIS_SCRATCH_ADDRESS)",
    # secrets
    "PDS_DPOP_SECRET": "one task: a per-process DPoP nonce secret; after a restart OAuth clients "
    "retry once with a fresh nonce",
    "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX": "the rotation key is a KMS key "
    "(PDS_PLC_ROTATION_KEY_KMS_KEY_ID); setting both is an error",
    # outbound fetches and the app view proxy
    "PDS_DISABLE_SSRF_PROTECTION": "SSRF protection must stay on in production",
    "PDS_FETCH_MAX_RESPONSE_SIZE": _DEFAULT,
    "PDS_PROXY_ALLOW_HTTP2": _DEFAULT,
    "PDS_PROXY_HEADERS_TIMEOUT": _DEFAULT,
    "PDS_PROXY_BODY_TIMEOUT": _DEFAULT,
    "PDS_PROXY_MAX_RESPONSE_SIZE": _DEFAULT,
    "PDS_PROXY_MAX_RETRIES": _DEFAULT,
    "PDS_PROXY_PREFER_COMPRESSED": _DEFAULT,
    "PDS_LEXICON_AUTHORITY_DID": _DEFAULT,
}
