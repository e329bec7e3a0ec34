"""Checks on every URL metric-stream calls out to (n8n webhooks, delivery webhooks):
no private, link-local or cloud-metadata address unless the operator allows it.

The host is resolved and every address it resolves to is checked, so a public name
pointing at 169.254.169.254 is refused as well; `post_checked` then connects to those
addresses only, so a name that resolves elsewhere a moment later (DNS rebinding) does
not lead the request there.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from metric_stream.errors import Forbidden, InvalidInput
from metric_stream.settings import Settings

if TYPE_CHECKING:
    import httpx

METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
            ipaddress.ip_address("100.100.100.200")}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def address_refusal(address: IPAddress, settings: Settings) -> str | None:
    """None if the address may be called, else why not."""
    if isinstance(address, ipaddress.IPv6Address):  # an IPv4 address inside (::ffff:, 6to4)
        address = address.ipv4_mapped or address.sixtofour or address
    if address in METADATA:
        return "a cloud metadata address"
    if address.is_loopback:
        allow = settings.outbound_allow_loopback
        if allow is None:
            allow = settings.backend == "embedded"
        return None if allow else "a loopback address (set METRIC_STREAM_OUTBOUND_ALLOW_LOOPBACK)"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "not a routable address"
    # not global: also the shared 100.64.0.0/10 (carrier-grade NAT, internal in clouds)
    if address.is_private or address.is_link_local or not address.is_global:
        return None if settings.outbound_allow_private else (
            "a private or link-local address (set METRIC_STREAM_OUTBOUND_ALLOW_PRIVATE)")
    return None


def check_outbound_url(url: str, settings: Settings, *, field: str = "url") -> str:
    """The URL, if metric-stream may call it; `Forbidden` saying why not otherwise."""
    checked_addresses(url, settings, field=field)
    return url


def checked_addresses(url: str, settings: Settings, *, field: str = "url") -> list[IPAddress]:
    """The addresses the URL's host resolves to (once each, in the resolver's order), if
    metric-stream may call every one; `Forbidden` saying why not otherwise."""
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
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
                                   for info in infos))
    for address in addresses:
        reason = address_refusal(address, settings)
        if reason:
            raise Forbidden(f"{parts.hostname} resolves to {address}, {reason}", field=field)
    return addresses


def post_checked(http: httpx.Client, url: str, addresses: Sequence[IPAddress],
                 **options: Any) -> httpx.Response:
    """POST to `url` at one of the `addresses` its host was checked on (the next one when
    one cannot be connected), the name kept for HTTP (Host) and TLS (server name and
    certificate): the name is not resolved again, so it cannot lead elsewhere."""
    import httpx

    target = httpx.URL(url)
    headers = {"host": target.netloc.decode("ascii"), **options.pop("headers", {})}
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    failed: httpx.TransportError | None = None
    for address in addresses:
        try:
            return http.post(target.copy_with(host=str(address)), headers=headers,
                             extensions=extensions, **options)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            failed = exc
    if failed is None:
        raise ValueError("no address to post to")
    raise failed
