"""The project's exceptions: every error pds-aws raises on purpose derives from `PdsAwsError`.

The CLI catches `PdsAwsError` (and AWS's own botocore errors) and prints the message, which
says what failed and what to do; anything else is a bug in our code and keeps its traceback.
Dependency-free, so the backup sidecar image and the local runtime import it as well.
"""

from __future__ import annotations


class PdsAwsError(Exception):
    """A failure pds-aws expects and explains: bad input, an unreachable PDS, a failed step."""


class ConfigError(PdsAwsError):
    """The config file (or another input the user gave) is invalid; the message names the key,
    the bad value and a valid example."""


class LocalStateError(PdsAwsError):
    """The local runtime's state file is missing, unreadable or incomplete."""


class OperationError(PdsAwsError):
    """An operation on a PDS, its stack or its backup failed; the message says which and why."""
