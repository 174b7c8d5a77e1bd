"""Names the stack, the local runtime and the operator commands share: one place each.

The CDK side (pds_aws.infra, pds_aws.backup.construct) gives the task's containers these
names, ports and mount paths; the local runtime reads them back from the synthesized task
definition and the operator commands use them to find containers, logs and backups. The
local runtime's state file is a typed record (`LocalState`), written by `pds_aws.local` and
read by `pds_aws.ops` and `pds_aws.local.commands`.

Dependency-free (standard library and pds_aws.errors only): the backup sidecar image imports it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pds_aws.errors import LocalStateError

# The containers of the PDS task and the restore drill's one-off task.
PDS_CONTAINER = "pds"
# The docker label on the `pds` container naming the image tag it runs (the stack sets it, and
# `pds-aws upgrade` on the revisions it registers): how an upgrade knows what is deployed.
IMAGE_TAG_LABEL = "pds-aws.image-tag"
BACKUP_CONTAINER = "backup"
DRILL_CONTAINER = "drill"

# The header @atproto/pds checks against PDS_RATE_LIMIT_BYPASS_KEY (dist/rate-limits.js,
# `bypass`): requests carrying the key skip every rate limit.
RATE_LIMIT_BYPASS_HEADER = "x-ratelimit-bypass"
# The PDS logs every request header but authorization and dpop (@atproto/pds dist/logger.js,
# `reqSerializer` -> @atproto/common `obfuscateHeaders`), so a request carrying the bypass key
# writes it into the log as `"x-ratelimit-bypass":"KEY"`. The PDS log group masks what this
# matches (infra/monitoring.py). CloudWatch Logs custom data identifiers accept neither `"`
# nor `:`, hence the class of anything but the key's letters and digits between the two.
RATE_LIMIT_BYPASS_LOG_PATTERN = RATE_LIMIT_BYPASS_HEADER + "[^A-Za-z0-9]+[A-Za-z0-9]+"

# The one PDS secret is a JSON object; its keys are the PDS variables ECS fills from them
# (infra/pds_secret.py). Operator commands read the admin password and the bypass key by key.
ADMIN_PASSWORD_KEY = "PDS_ADMIN_PASSWORD"
JWT_SECRET_KEY = "PDS_JWT_SECRET"
RATE_LIMIT_BYPASS_KEY = "PDS_RATE_LIMIT_BYPASS_KEY"
# The custom resource that adds those keys; the local runtime runs its handler the same way.
SECRET_KEYS_RESOURCE_TYPE = "Custom::PdsSecretKeys"

# The PDS listens here inside the task; the ALB's target group and the sidecar use it.
PDS_PORT = 3000
# @atproto/pds's health endpoint: the ALB health check, the container health checks, the
# sidecar's wait for the PDS and the operator commands all ask it.
HEALTH_CHECK_PATH = "/xrpc/_health"
# The PDS as the task's other containers reach it (they share localhost).
PDS_HEALTH_URL = f"http://127.0.0.1:{PDS_PORT}{HEALTH_CHECK_PATH}"

# Where the task's data volume is mounted in the PDS and backup containers.
DATA_DIRECTORY = "/pds"
# Every backup object lives under this key prefix of the backup bucket; the task role may
# touch only these keys, so the bucket can later hold other things (e.g. exports) safely.
BACKUP_PREFIX = "pds"

# The environment variable that names the config file (set by the Makefile from CONFIG).
CONFIG_ENV = "PDS_AWS_CONFIG"
# The example config: the default of local commands only (deploy, diff and destroy must
# name a config).
EXAMPLE_CONFIG_FILE = "pds.example.toml"

# The local runtime's working state, under the directory it is started in.
LOCAL_DIR = ".local"
STATE_FILE = Path(LOCAL_DIR) / "state.json"


@dataclass(frozen=True)
class LocalState:
    """What a running local runtime tells the commands that talk to it (`.local/state.json`).

    `url` and `admin_password` are required; every other field has an empty default so that
    a state file written by an older version still reads.
    """

    url: str
    admin_password: str = field(repr=False)
    # The URL the PDS's DID documents name (http://localhost:PORT), and the PDS behind the edge.
    public_url: str = ""
    pds_url: str = ""
    # PDS_RATE_LIMIT_BYPASS_KEY, for operator tools and benchmarks that exceed the PDS's rate
    # limits (header RATE_LIMIT_BYPASS_HEADER); the file is readable by its owner only.
    rate_limit_bypass_key: str = field(default="", repr=False)
    handle_domain: str = ""
    mail_dir: str = ""
    # The local AWS (moto server) and what the stack's resources became there.
    moto_url: str = ""
    region: str = ""
    plc_url: str = ""
    smtp_url: str = ""
    backup_url: str = ""
    blob_bucket: str = ""
    rotation_key_id: str = ""
    data_dir: str = ""
    logs_dir: str = ""
    pds_version: str = ""
    # The PDS image tag this run stands in for (the config's, or `local up --image-tag`).
    image_tag: str = ""
    warnings: tuple[str, ...] = ()
    # Process ids by name (aws, plc, smtp, the containers, edge) and of `pds-aws local up`.
    pids: Mapping[str, int] = field(default_factory=dict)
    supervisor_pid: int = 0
    started_at: str = ""
    # Seconds from start to each milestone (synthesized, aws_ready, <container>_healthy, ready).
    startup_seconds: Mapping[str, float] = field(default_factory=dict)

    REQUIRED = ("url", "admin_password")

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["warnings"] = list(self.warnings)
        data["pids"] = dict(self.pids)
        data["startup_seconds"] = dict(self.startup_seconds)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: Path = STATE_FILE) -> LocalState:
        """The record from parsed JSON; LocalStateError names what is missing or wrong."""
        missing = [key for key in cls.REQUIRED if not data.get(key)]
        if missing:
            raise LocalStateError(
                f"{source}: missing {', '.join(missing)}; this file is written by the local "
                f"runtime: start it with `make run` (or `pds-aws local up`) and try again"
            )
        known = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        try:
            for key, value in data.items():
                if key not in known or value is None:
                    continue  # fields of other versions are ignored
                if key == "warnings":
                    values[key] = tuple(str(w) for w in value)
                elif key == "pids":
                    values[key] = {str(k): int(v) for k, v in dict(value).items()}
                elif key == "startup_seconds":
                    values[key] = {str(k): float(v) for k, v in dict(value).items()}
                elif key == "supervisor_pid":
                    values[key] = int(value)
                else:
                    values[key] = str(value)
        except (TypeError, ValueError) as exc:
            raise LocalStateError(
                f"{source}: {key} has an unexpected value ({exc}); restart the local runtime"
            ) from None
        return cls(**values)

    @classmethod
    def read(cls, path: Path) -> LocalState:
        """The state file at `path`; LocalStateError says how to get a valid one."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LocalStateError(
                f"{path}: not found; the local runtime is not running here. Start it with "
                f"`make run` (or `pds-aws local up`), or pass --state PATH"
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise LocalStateError(
                f"{path}: not valid JSON ({exc}); restart the local runtime"
            ) from None
        if not isinstance(data, dict):
            raise LocalStateError(f"{path}: expected a JSON object; restart the local runtime")
        return cls.from_json(data, path)

    def write(self, path: Path) -> None:
        """Atomically, readable by the owner only (it holds the local admin password)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        tmp.chmod(0o600)
        tmp.replace(path)
