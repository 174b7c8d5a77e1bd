"""The PDS path table: the one place that says which paths reach the PDS.

The ALB listener rules (infra/alb.py), the direct edge's Caddy configuration (direct/caddy.py)
and the local edge proxy (local/proxy.py) are all built from this table, so what is reachable
locally is what is reachable on AWS, whichever edge is chosen.
"""

from __future__ import annotations

import fnmatch
import re
from enum import Enum

from pds_aws.names import HEALTH_CHECK_PATH as HEALTH_CHECK_PATH  # re-exported: a PDS path

# What @atproto/pds serves. /xrpc/* covers the health check and the subscribeRepos websocket.
PDS_PATH_PATTERNS: tuple[str, ...] = (
    "/xrpc/*",
    "/.well-known/*",
    "/oauth/*",
    "/@atproto/*",
    "/account",
    "/account/*",
    "/",
)
ROBOTS_PATH = "/robots.txt"
ROBOTS_TXT = "User-agent: *\nDisallow: /\n"
DENIED_BODY = "Forbidden"
# An ALB listener rule takes at most five path-pattern values.
ALB_PATTERNS_PER_RULE = 5


class Route(Enum):
    PDS = "pds"
    ROBOTS = "robots"
    DENIED = "denied"


def alb_rule_groups() -> list[tuple[str, ...]]:
    """The PDS patterns split into groups an ALB rule accepts, in table order."""
    patterns = PDS_PATH_PATTERNS
    return [
        patterns[i : i + ALB_PATTERNS_PER_RULE]
        for i in range(0, len(patterns), ALB_PATTERNS_PER_RULE)
    ]


def _matches(pattern: str, path: str) -> bool:
    # ALB path patterns: case-sensitive, '*' matches any run of characters (slashes too),
    # '?' one character; the query string is not part of the path.
    return fnmatch.fnmatchcase(path, pattern)


def route(path: str) -> Route:
    """Where the ALB sends a request for `path` (query string excluded)."""
    path = path.split("?", 1)[0]
    if path == ROBOTS_PATH:
        return Route.ROBOTS
    if any(_matches(p, path) for p in PDS_PATH_PATTERNS):
        return Route.PDS
    return Route.DENIED


def pattern_regex(pattern: str) -> str:
    """An ALB path pattern as an anchored, case-sensitive regular expression (RE2 and Python).

    '*' becomes '.*' and '?' '.', everything else is literal: the same language as `route`.
    """
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return "^" + "".join(parts) + "$"


def pds_paths_regex() -> str:
    """One regular expression matching exactly the paths `route` sends to the PDS."""
    return "|".join(f"(?:{pattern_regex(p)})" for p in PDS_PATH_PATTERNS)
