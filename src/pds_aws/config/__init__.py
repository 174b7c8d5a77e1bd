"""The deployment config: the only reader of the TOML file.

`from pds_aws.config import Config, load_config` is the way in. model.py holds the sections,
`Config` and the loader; values.py the values and checks the sections share (sizes, regions,
patterns, the section base); recover.py the [recover] section, pipeline.py [pipeline].
"""

from pds_aws.config.model import (
    FARGATE_FREE_EPHEMERAL_GIB,
    RELAY_CHECK_MIN_MINUTES,
    AwsSettings,
    BackupSettings,
    Config,
    ConfigError,
    CostSettings,
    EdgeSettings,
    MonitoringSettings,
    PdsSettings,
    RelaySettings,
    TaskSettings,
    load_config,
    parse_config,
)
from pds_aws.config.recover import RecoverSettings
from pds_aws.config.values import (
    ACM_DOMAIN_MAX_LENGTH,
    AWS_REGIONS,
    FARGATE_SIZES,
    Architecture,
    EdgeKind,
    Mode,
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
