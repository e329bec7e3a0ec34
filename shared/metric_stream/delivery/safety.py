"""Outbound safety at connect time: the resolver of the delivery HTTP session checks
every address a host name resolves to, and refuses private, link-local, loopback and
cloud-metadata addresses unless the operator allowed them (`services.outbound`).

Checking the URL when an endpoint is saved is not enough (the name may resolve
elsewhere later: DNS rebinding); this resolver is what the connection actually uses,
so the address checked is the address connected. Redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from aiohttp import ClientConnectorError
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from metric_stream.services.outbound import address_refusal
from metric_stream.settings import Settings


class RefusedAddress(OSError):
    """The host resolved only to addresses delivery may not connect to."""


class SafeResolver(AbstractResolver):
    def __init__(self, settings: Settings, inner: AbstractResolver | None = None) -> None:
        self.settings = settings
        self.inner = inner or DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        allowed: list[ResolveResult] = []
        reasons: list[str] = []
        for result in results:
            address = ipaddress.ip_address(result["host"].split("%", 1)[0])
            reason = address_refusal(address, self.settings)
            if reason is None:
                allowed.append(result)
            else:
                reasons.append(f"{address} is {reason}")
        if not allowed:
            raise RefusedAddress(f"{host} is refused: " + "; ".join(reasons[:3]))
        return allowed

    async def close(self) -> None:
        await self.inner.close()


def literal_refusal(host: str, ctx: Any) -> str | None:
    """Why an IP-literal host may not be called (aiohttp connects to a literal without
    asking the resolver); None for a name or an allowed address."""
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None  # a name: SafeResolver checks what it resolves to
    reason = address_refusal(address, ctx.settings)
    return f"{host} is refused: {address} is {reason}" if reason else None


def refused(exc: BaseException) -> str | None:
    """The refusal message when a connection failed because of SafeResolver."""
    seen: Any = exc
    for _ in range(4):
        if isinstance(seen, RefusedAddress):
            return str(seen)
        if isinstance(seen, ClientConnectorError):
            seen = seen.os_error
            continue
        seen = getattr(seen, "__cause__", None)
        if seen is None:
            return None
    return None
