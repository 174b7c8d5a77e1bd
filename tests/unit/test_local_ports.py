"""The local runtime's ports stay out of the range the kernel hands to outgoing connections."""

from __future__ import annotations

import socket

from pds_aws.local import processes
from pds_aws.local.processes import free_port, port_is_free


def test_free_port_lies_outside_the_ephemeral_range_and_is_bindable() -> None:
    """A CI run failed with EADDRINUSE: the PLC's port, taken from bind(0), was in the ephemeral
    range (Linux: /proc/sys/net/ipv4/ip_local_port_range), where any outgoing connection made
    before the server bound could take it as its source port."""
    low, high = processes._ephemeral_range()
    for _ in range(20):
        port = free_port()
        assert not low <= port <= high, (port, low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", port))


def test_a_listening_port_is_not_free() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", free_port()))
        server.listen()
        assert not port_is_free(server.getsockname()[1])
