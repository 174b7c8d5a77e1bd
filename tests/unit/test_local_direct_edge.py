"""The direct edge on one machine, without processes: the task's Caddy configuration with local
addresses only, and the local certificate authority behind the certificate keeper."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from pds_aws.config import Config, ConfigError
from pds_aws.direct.caddy import caddy_config
from pds_aws.direct.construct import proxy_site
from pds_aws.direct.local_ca import LocalAuthority, ensure_authority, issue, issued
from pds_aws.direct.tls import Settings, check_once
from pds_aws.local.direct_edge import DirectPorts, local_caddy_config
from pds_aws.names import DATA_DIRECTORY, PDS_PORT


def ports(tmp_path: Path) -> DirectPorts:
    return DirectPorts(
        https=8443,
        http=8080,
        admin=2999,
        authority=LocalAuthority(tmp_path / "ca"),
        config_file=tmp_path / "caddy" / "pds.json",
    )


def test_local_caddy_config_changes_addresses_and_paths_only(
    tmp_path: Path, direct_config: Config
) -> None:
    task = caddy_config(proxy_site(direct_config, DATA_DIRECTORY, PDS_PORT))
    local = local_caddy_config(
        json.dumps(task),
        ports=ports(tmp_path),
        pds_port=41000,
        task_pds_port=PDS_PORT,
        volumes={DATA_DIRECTORY: tmp_path / "data"},
    )
    servers = local["apps"]["http"]["servers"]
    assert servers["https"]["listen"] == ["127.0.0.1:8443"]
    assert servers["http"]["listen"] == ["127.0.0.1:8080"]
    assert local["admin"] == {"listen": "127.0.0.1:2999"}
    assert (local["apps"]["http"]["https_port"], local["apps"]["http"]["http_port"]) == (
        8443,
        8080,
    )
    files = local["apps"]["tls"]["certificates"]["load_files"]
    assert files == [
        {
            "certificate": f"{tmp_path}/data/tls/live/fullchain.pem",
            "key": f"{tmp_path}/data/tls/live/privkey.pem",
        }
    ]
    text = json.dumps(local)
    assert f"127.0.0.1:{PDS_PORT}" not in text and "127.0.0.1:41000" in text
    redirect = servers["http"]["routes"][-1]["handle"][0]["headers"]["Location"]
    assert redirect == ["https://{http.request.host}:8443{http.request.uri}"]
    # Everything else is the task's: routes (403, robots, allow-list), TLS policy, logging.
    assert servers["https"]["routes"] == json.loads(
        json.dumps(task["apps"]["http"]["servers"]["https"]["routes"]).replace(
            f"127.0.0.1:{PDS_PORT}", "127.0.0.1:41000"
        )
    )
    assert servers["https"]["automatic_https"] == {"disable": True}
    assert local["logging"] == task["logging"]


def test_the_local_authority_signs_a_wildcard_certificate_and_logs_each_issue(
    tmp_path: Path,
) -> None:
    authority = ensure_authority(tmp_path / "ca")
    root = authority.certificate.read_bytes()
    assert ensure_authority(tmp_path / "ca").certificate.read_bytes() == root  # made once
    chain, _key, serial = issue(authority, ["pds.example.com", "*.pds.example.com"])
    leaf = x509.load_pem_x509_certificate(chain)
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(root))
    assert leaf.serial_number == serial
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert names.value.get_values_for_type(x509.DNSName) == [
        "pds.example.com",
        "*.pds.example.com",
    ]
    assert [entry["serial"] for entry in issued(authority)] == [serial]


def test_the_keeper_asks_the_local_authority_once_and_not_again_after_a_restore(
    tmp_path: Path,
) -> None:
    authority = ensure_authority(tmp_path / "ca")
    settings = Settings(
        data_dir=tmp_path / "data",
        domain="pds.example.com",
        acme_directory="https://acme.invalid/directory",
        acme_email="",
        caddy_admin="",
        local_ca=authority.directory,
    )
    now = datetime.now(UTC)
    first = check_once(settings, now)
    assert first is not None and len(issued(authority)) == 1
    assert (settings.account / "local-ca.json").is_file()
    # The certificate files restored on a new task: nothing is requested.
    assert check_once(settings, now) == first
    assert len(issued(authority)) == 1
    # Below thirty days left it renews, as with Let's Encrypt: a second certificate.
    check_once(settings, now + timedelta(days=61))
    serials = [entry["serial"] for entry in issued(authority)]
    assert len(serials) == 2
    served = x509.load_pem_x509_certificate(settings.certificate.read_bytes())
    assert served.serial_number == serials[-1] != serials[0]


def test_without_the_local_authority_the_keeper_would_run_certbot(tmp_path: Path) -> None:
    settings = Settings.from_environment(
        {
            "PDS_DATA_DIRECTORY": str(tmp_path),
            "TLS_DOMAIN": "pds.example.com",
            "ACME_DIRECTORY": "https://acme-v02.api.letsencrypt.org/directory",
        }
    )
    assert settings.local_ca is None
    local = Settings.from_environment(
        {
            "PDS_DATA_DIRECTORY": str(tmp_path),
            "TLS_DOMAIN": "pds.example.com",
            "ACME_DIRECTORY": "https://acme-v02.api.letsencrypt.org/directory",
            "TLS_LOCAL_CA": str(tmp_path / "ca"),
        }
    )
    assert local.local_ca == tmp_path / "ca"


@pytest.mark.parametrize(("gib", "setting"), [(20, None), (30, 30)])
def test_ephemeral_storage_is_named_only_when_billed(
    config_factory: Any, gib: int, setting: int | None
) -> None:
    """Fargate gives 20 GiB without charge when the task definition names no size; 21..200
    must be named and are billed above 20."""
    config = config_factory(task={"ephemeral_storage_gib": gib})
    assert config.task.ephemeral_storage_setting == setting


def test_less_than_fargates_twenty_gib_is_refused(config_factory: Any) -> None:
    with pytest.raises(ConfigError, match="ephemeral_storage_gib"):
        config_factory(task={"ephemeral_storage_gib": 19})
