"""A local certificate authority: the local runtime's stand-in for Let's Encrypt.

`make run` with `[edge] kind = "direct"` runs the same certificate keeper (`pds-aws-tls`) as
the task; where the task asks Let's Encrypt (certbot, DNS-01), the local keeper asks this
authority, which lives in the local runtime's state directory (`.local/ca/`), outside the
task's data volume, like a public CA outside the task. It keeps a log of every certificate it
issued (`issued.jsonl`), as an ACME server counts certificates against its rate limits: a
restart that restored the certificate from the backup issues nothing.

    ca.pem / ca-key.pem   the root (ECDSA P-256), made once; clients and the PDS trust ca.pem
    issued.jsonl          one JSON line per certificate issued: serial, names, time
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from cryptography import x509

ROOT_CERTIFICATE = "ca.pem"
ROOT_KEY = "ca-key.pem"
ISSUED_LOG = "issued.jsonl"
ROOT_NAME = "pds-aws local CA"
ROOT_DAYS = 3650
# Let's Encrypt's lifetime: the keeper's renewal rule (30 days left) behaves as on AWS.
CERTIFICATE_DAYS = 90


class LocalAuthority:
    """The authority's files in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory: Final = directory
        self.certificate: Final = directory / ROOT_CERTIFICATE
        self.key: Final = directory / ROOT_KEY
        self.issued_log: Final = directory / ISSUED_LOG


def _ca_key_usage() -> x509.KeyUsage:
    """A root that signs certificates only."""
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def ensure_authority(directory: Path, now: datetime | None = None) -> LocalAuthority:
    """The authority in `directory`, its root made on first use."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    authority = LocalAuthority(directory)
    if authority.certificate.is_file() and authority.key.is_file():
        return authority
    now = now or datetime.now(UTC)
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ROOT_NAME)])
    root = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=ROOT_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    authority.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    authority.key.chmod(0o600)
    authority.certificate.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    return authority


def issue(
    authority: LocalAuthority, names: list[str], now: datetime | None = None
) -> tuple[bytes, bytes, int]:
    """A certificate for `names` signed by the root: (PEM chain, PEM key, serial)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = now or datetime.now(UTC)
    root = x509.load_pem_x509_certificate(authority.certificate.read_bytes())
    root_key = serialization.load_pem_private_key(authority.key.read_bytes(), password=None)
    assert isinstance(root_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    serial = x509.random_serial_number()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CERTIFICATE_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False
        )
        .sign(root_key, hashes.SHA256())
    )
    chain = certificate.public_bytes(serialization.Encoding.PEM) + root.public_bytes(
        serialization.Encoding.PEM
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with authority.issued_log.open("a", encoding="utf-8") as log:
        record = {"serial": serial, "names": names, "issued_at": now.isoformat()}
        log.write(json.dumps(record) + "\n")
    return chain, key_pem, serial


def issued(authority: LocalAuthority) -> list[dict[str, object]]:
    """Every certificate the authority issued, oldest first."""
    if not authority.issued_log.is_file():
        return []
    lines = authority.issued_log.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
