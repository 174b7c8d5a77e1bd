"""The PDS route table: what the ALB forwards, and what the local edge forwards."""

from __future__ import annotations

import pytest

from pds_aws.routes import ALB_PATTERNS_PER_RULE, PDS_PATH_PATTERNS, Route, alb_rule_groups, route


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", Route.PDS),
        ("/xrpc/_health", Route.PDS),
        ("/xrpc/com.atproto.sync.subscribeRepos?cursor=1", Route.PDS),
        ("/.well-known/atproto-did", Route.PDS),
        ("/.well-known/oauth-authorization-server", Route.PDS),
        ("/oauth/authorize", Route.PDS),
        ("/@atproto/oauth-provider/~assets/main.js", Route.PDS),
        ("/account", Route.PDS),
        ("/account/sign-in", Route.PDS),
        ("/robots.txt", Route.ROBOTS),
        ("/wp-login.php", Route.DENIED),
        ("/.env", Route.DENIED),
        ("/accounts", Route.DENIED),
        ("/XRPC/_health", Route.DENIED),
        ("/tls-check", Route.DENIED),
    ],
)
def test_route(path: str, expected: Route) -> None:
    assert route(path) is expected


def test_alb_groups_cover_every_pattern_within_the_rule_limit() -> None:
    groups = alb_rule_groups()
    assert all(0 < len(g) <= ALB_PATTERNS_PER_RULE for g in groups)
    assert tuple(p for g in groups for p in g) == PDS_PATH_PATTERNS
