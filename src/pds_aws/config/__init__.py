"""The deployment config: the only reader of the TOML file.

`from pds_aws.config import Config, load_config` is the way in; model.py holds the sections,
`Config` and the loader.
"""

from pds_aws.config.model import (
    ACM_DOMAIN_MAX_LENGTH,
    AWS_REGIONS,
    FARGATE_FREE_EPHEMERAL_GIB,
    FARGATE_SIZES,
    RELAY_CHECK_MIN_MINUTES,
    Architecture,
    AwsSettings,
    BackupSettings,
    Config,
    ConfigError,
    CostSettings,
    EdgeKind,
    EdgeSettings,
    Mode,
    MonitoringSettings,
    PdsSettings,
    RecoverSettings,
    RelaySettings,
    TaskSettings,
    load_config,
    parse_config,
)

__all__ = [
    "ACM_DOMAIN_MAX_LENGTH",
    "AWS_REGIONS",
    "FARGATE_FREE_EPHEMERAL_GIB",
    "FARGATE_SIZES",
    "RELAY_CHECK_MIN_MINUTES",
    "Architecture",
    "AwsSettings",
    "BackupSettings",
    "Config",
    "ConfigError",
    "CostSettings",
    "EdgeKind",
    "EdgeSettings",
    "Mode",
    "MonitoringSettings",
    "PdsSettings",
    "RecoverSettings",
    "RelaySettings",
    "TaskSettings",
    "load_config",
    "parse_config",
]
