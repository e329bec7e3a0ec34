"""`python -m tests.security.launch ARGS...`: `metric-stream ARGS...` with the root logger
at DEBUG (so every debug line a secret could hide in is written), and with every
connection outside loopback refused, so that a fuzzed or leaked URL never reaches the
network: names other than localhost do not resolve, non-loopback addresses refuse.

`guarded_connects` is the connection half, for tests in this process."""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import sys
from collections.abc import Callable
from typing import Any

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host: Any) -> bool:
    text = host.decode() if isinstance(host, bytes) else str(host)
    if text.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(text.strip("[]").split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _is_address(host: Any) -> bool:
    text = host.decode() if isinstance(host, bytes) else str(host)
    try:
        ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def guarded_connects() -> dict[str, Callable[..., Any]]:
    """`socket.socket.connect` and `connect_ex` that refuse any address but loopback."""
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def allowed(sock: socket.socket, address: Any) -> bool:
        return sock.family not in (socket.AF_INET, socket.AF_INET6) or is_loopback(address[0])

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        if not allowed(sock, address):
            raise ConnectionRefusedError(errno.ECONNREFUSED, "test: only loopback")
        connect(sock, address)

    def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
        return connect_ex(sock, address) if allowed(sock, address) else errno.ECONNREFUSED

    return {"connect": guarded_connect, "connect_ex": guarded_connect_ex}


def refuse_network() -> None:
    """Only loopback: other names fail to resolve, other addresses refuse to connect."""
    resolve = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not is_loopback(host) and not _is_address(host):
            raise socket.gaierror(socket.EAI_NONAME, "offline test: no DNS")
        return resolve(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
    for name, replacement in guarded_connects().items():
        setattr(socket.socket, name, replacement)


def main() -> int:
    refuse_network()
    logging.basicConfig(level=logging.DEBUG,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from metric_stream.cli.main import main as metric_stream

    return metric_stream(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
