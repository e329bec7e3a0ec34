"""Checks on every URL metric-stream calls out to (n8n webhooks, delivery webhooks):
no private, link-local or cloud-metadata address unless the operator allows it.

The host is resolved and every address it resolves to is checked, so a public name
pointing at 169.254.169.254 is refused as well.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from metric_stream.errors import Forbidden, InvalidInput
from metric_stream.settings import Settings

METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
            ipaddress.ip_address("100.100.100.200")}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def address_refusal(address: IPAddress, settings: Settings) -> str | None:
    """None if the address may be called, else why not."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address in METADATA:
        return "a cloud metadata address"
    if address.is_loopback:
        allow = settings.outbound_allow_loopback
        if allow is None:
            allow = settings.backend == "embedded"
        return None if allow else "a loopback address (set METRIC_STREAM_OUTBOUND_ALLOW_LOOPBACK)"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "not a routable address"
    if address.is_private or address.is_link_local:
        return None if settings.outbound_allow_private else (
            "a private or link-local address (set METRIC_STREAM_OUTBOUND_ALLOW_PRIVATE)")
    return None


def check_outbound_url(url: str, settings: Settings, *, field: str = "url") -> str:
    """The URL, if metric-stream may call it; `Forbidden` saying why not otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("must be an absolute http(s) URL", field=field)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidInput("has an invalid port", field=field) from None
    try:
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise Forbidden(f"{parts.hostname} cannot be resolved: {exc.strerror}",
                        field=field) from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        reason = address_refusal(address, settings)
        if reason:
            raise Forbidden(f"{parts.hostname} resolves to {address}, {reason}", field=field)
    return url
