"""Ask relays to crawl this PDS (com.atproto.sync.requestCrawl on each relay)."""

from __future__ import annotations

from dataclasses import dataclass

from pds_aws.ops.xrpc import Xrpc, XrpcError
from pds_aws.relay.facts import relay_base


@dataclass(frozen=True)
class CrawlResult:
    relay: str
    ok: bool
    detail: str


def request_crawl(relays: list[str], hostname: str, timeout: float = 30.0) -> list[CrawlResult]:
    results = []
    for relay in relays:
        base = relay_base(relay)
        try:
            Xrpc(base, timeout=timeout).procedure(
                "com.atproto.sync.requestCrawl", {"hostname": hostname}
            )
        except XrpcError as exc:
            results.append(CrawlResult(base, False, str(exc)))
        else:
            results.append(CrawlResult(base, True, f"crawl of {hostname} requested"))
    return results
