"""`pds-aws-tls`: keeps the direct edge's wildcard certificate (domain + *.domain).

Runs as container `tls` of the PDS task (the backup image), after the backup sidecar is
healthy, so a replaced task finds the certificate and the ACME account it restored:

    <data>/tls/live/fullchain.pem, privkey.pem     the certificate Caddy loads
    <data>/tls/account/...                         certbot's ACME account (accounts/ tree)

The backup sidecar backs both up like key files (backup/layout.py, FileKind.TLS_FILE). Only
when the certificate is missing, for other names, or within RENEW_DAYS of expiry does this
ask Let's Encrypt (certbot, DNS-01 on Route 53 with certbot-dns-route53): one wildcard
certificate for every handle, so sign-ups never meet the 50-certificates-a-week limit. After a
renewal it tells Caddy to reload. Every check logs a JSON line with `days_left`, which the
stack's "certificate expiring" alarm reads: a renewal that keeps failing alarms weeks before
the certificate expires, and so does a keeper that stopped logging.

Locally (`make run`), the local runtime sets TLS_LOCAL_CA to its local certificate authority
(direct/local_ca.py), which issues instead of Let's Encrypt; everything else is the same.

    pds-aws-tls run       keep the certificate (loop)
    pds-aws-tls health    exit 0 when a certificate for the names is in place and unexpired
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

TLS_DIR = "tls"
LIVE_DIR = "live"
ACCOUNT_DIR = "account"
CERTIFICATE_FILE = "fullchain.pem"
KEY_FILE = "privkey.pem"
CERT_NAME = "pds"
# Let's Encrypt certificates last 90 days; certbot's own default is to renew at 30 days left.
RENEW_DAYS = 30
CHECK_INTERVAL_SECONDS = 3600.0
RETRY_SECONDS = 900.0
CERTBOT_TIMEOUT_SECONDS = 600.0


def log(level: str, message: str, **fields: object) -> None:
    line = {"level": level, "logger": "pds-aws-tls", "msg": message, **fields}
    print(json.dumps(line, default=str), flush=True)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    domain: str
    acme_directory: str
    acme_email: str
    caddy_admin: str  # "" when there is no Caddy to reload
    local_ca: Path | None = None  # the local runtime's authority instead of the ACME server

    @property
    def names(self) -> list[str]:
        return [self.domain, f"*.{self.domain}"]

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / TLS_DIR

    @property
    def certificate(self) -> Path:
        return self.tls_dir / LIVE_DIR / CERTIFICATE_FILE

    @property
    def key(self) -> Path:
        return self.tls_dir / LIVE_DIR / KEY_FILE

    @property
    def account(self) -> Path:
        return self.tls_dir / ACCOUNT_DIR

    @classmethod
    def from_environment(cls, env: dict[str, str]) -> Settings:
        missing = [
            n for n in ("PDS_DATA_DIRECTORY", "TLS_DOMAIN", "ACME_DIRECTORY") if not env.get(n)
        ]
        if missing:
            raise SystemExit(
                f"pds-aws-tls: {', '.join(missing)} not set; the task definition sets them "
                "(pds_aws.direct.construct)"
            )
        return cls(
            data_dir=Path(env["PDS_DATA_DIRECTORY"]),
            domain=env["TLS_DOMAIN"],
            acme_directory=env["ACME_DIRECTORY"],
            acme_email=env.get("ACME_EMAIL", ""),
            caddy_admin=env.get("CADDY_ADMIN", ""),
            local_ca=Path(env["TLS_LOCAL_CA"]) if env.get("TLS_LOCAL_CA") else None,
        )


@dataclass(frozen=True)
class CertificateState:
    not_after: datetime
    names: frozenset[str]

    def days_left(self, now: datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400


def read_certificate(path: Path) -> CertificateState | None:
    """Expiry and DNS names of the first certificate in a PEM file; None if absent or bad."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = frozenset(san.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = frozenset()
    return CertificateState(cert.not_valid_after_utc, names)


def needs_certificate(
    state: CertificateState | None, names: list[str], now: datetime
) -> str | None:
    """Why a new certificate is needed, or None when the one in place will do."""
    if state is None:
        return "no certificate yet"
    if not set(names) <= state.names:
        return f"the certificate covers {sorted(state.names)}, not {names}"
    if state.days_left(now) < RENEW_DAYS:
        return f"{state.days_left(now):.1f} days left (renewing below {RENEW_DAYS})"
    return None


def certbot_command(settings: Settings, config_dir: Path, work: Path) -> list[str]:
    argv = [
        str(Path(sys.executable).parent / "certbot"),
        "certonly",
        "--non-interactive",
        "--agree-tos",
        "--dns-route53",
        "--server", settings.acme_directory,
        "--config-dir", str(config_dir),
        "--work-dir", str(work / "work"),
        "--logs-dir", str(work / "logs"),
        "--cert-name", CERT_NAME,
        "--key-type", "ecdsa",
    ]  # fmt: skip
    if settings.acme_email:
        argv += ["--email", settings.acme_email]
    else:
        argv.append("--register-unsafely-without-email")
    for name in settings.names:
        argv += ["-d", name]
    return argv


def _replace(source: Path, target: Path, mode: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, tmp)  # follows certbot's live/ symlinks
    tmp.chmod(mode)
    tmp.replace(target)


def _write(data: bytes, target: Path, mode: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    tmp.replace(target)


def obtain_locally(settings: Settings, directory: Path) -> None:
    """The local runtime's authority issues the certificate (no ACME, no network)."""
    from pds_aws.direct.local_ca import LocalAuthority, issue

    authority = LocalAuthority(directory)
    log("info", "requesting a certificate", names=settings.names, server=f"local CA {directory}")
    chain, key, serial = issue(authority, settings.names)
    _write(key, settings.key, 0o600)
    _write(chain, settings.certificate, 0o644)
    # The stand-in for certbot's ACME account: backed up and restored with the certificate.
    account = settings.account / "local-ca.json"
    if not account.is_file():
        _write(json.dumps({"authority": str(directory)}).encode(), account, 0o600)
    log("info", "local CA issued", serial=serial)


def obtain(settings: Settings) -> None:
    """Ask the ACME server for the wildcard certificate, with the restored account if any."""
    if settings.local_ca is not None:
        obtain_locally(settings, settings.local_ca)
        return
    with tempfile.TemporaryDirectory(prefix="pds-aws-tls-") as tmp:
        work = Path(tmp)
        config_dir = work / "config"
        if settings.account.is_dir():
            shutil.copytree(settings.account, config_dir / "accounts")
        argv = certbot_command(settings, config_dir, work)
        log(
            "info", "requesting a certificate", names=settings.names, server=settings.acme_directory
        )
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=CERTBOT_TIMEOUT_SECONDS, check=False
        )
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
            raise RuntimeError(f"certbot exited {result.returncode}: {' | '.join(tail)}")
        live = config_dir / "live" / CERT_NAME
        _replace(live / KEY_FILE, settings.key, 0o600)
        _replace(live / CERTIFICATE_FILE, settings.certificate, 0o644)
        accounts = config_dir / "accounts"
        for path in sorted(p for p in accounts.rglob("*") if p.is_file()):
            _replace(path, settings.account / path.relative_to(accounts), 0o600)


def reload_caddy(admin: str) -> None:
    """Make Caddy load the renewed files: the same config, re-applied (`caddy reload --force`)."""
    with urllib.request.urlopen(f"http://{admin}/config/", timeout=10) as response:
        body = response.read()
    request = urllib.request.Request(
        f"http://{admin}/load",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Cache-Control": "must-revalidate"},
    )
    with urllib.request.urlopen(request, timeout=30):
        pass


def check_once(settings: Settings, now: datetime) -> CertificateState | None:
    state = read_certificate(settings.certificate)
    reason = needs_certificate(state, settings.names, now)
    if reason is not None:
        log("info", f"a certificate is needed: {reason}")
        obtain(settings)
        state = read_certificate(settings.certificate)
        if state is None:
            raise RuntimeError(f"certbot succeeded but {settings.certificate} is unreadable")
        log("info", "certificate obtained", not_after=state.not_after.isoformat())
        if settings.caddy_admin:
            try:
                reload_caddy(settings.caddy_admin)
                log("info", "Caddy reloaded the certificate")
            except OSError as exc:  # first start: Caddy waits for this container
                log("info", f"Caddy not reloaded ({exc}); it loads the files when it starts")
    return state


def run(settings: Settings) -> int:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.is_set():
        now = datetime.now(UTC)
        wait = CHECK_INTERVAL_SECONDS
        try:
            state = check_once(settings, now)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            log(
                "error",
                f"ERROR certificate renewal failed, retrying in {RETRY_SECONDS:.0f} s: {exc}",
            )
            state = read_certificate(settings.certificate)
            wait = RETRY_SECONDS
        if state is not None:
            # The alarm's metric (direct/construct.py): days until the served certificate expires.
            log(
                "info",
                "certificate",
                event="certificate",
                days_left=round(state.days_left(datetime.now(UTC)), 2),
                not_after=state.not_after.isoformat(),
            )
        stop.wait(wait)
    return 0


def health(settings: Settings) -> int:
    state = read_certificate(settings.certificate)
    ok = (
        state is not None
        and set(settings.names) <= state.names
        and state.days_left(datetime.now(UTC)) > 0
    )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pds-aws-tls", description="Keeps the direct edge's wildcard certificate."
    )
    parser.add_argument("command", choices=["run", "health"])
    args = parser.parse_args(argv)
    settings = Settings.from_environment(dict(os.environ))
    if args.command == "health":
        return health(settings)
    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
