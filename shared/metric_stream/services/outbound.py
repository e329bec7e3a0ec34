"""Checks on every URL metric-stream calls out to (n8n webhooks, delivery webhooks, a
collector's `params.baseUrl`, Apprise's services): no private, link-local or
cloud-metadata address unless the operator allows it.

The host is resolved and every address it resolves to is checked, so a public name
pointing at 169.254.169.254 is refused as well; `post_checked` then connects to those
addresses only, so a name that resolves elsewhere a moment later (DNS rebinding) does
not lead the request there. `checked_client` goes further for clients that follow
redirects: every connection it opens, to any host, is checked when it is made.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from metric_stream.errors import Forbidden, InvalidInput
from metric_stream.settings import Settings

if TYPE_CHECKING:
    import httpx

METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
            ipaddress.ip_address("100.100.100.200")}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
T = TypeVar("T")


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


def is_loopback(host: str) -> bool:
    """Whether `host` is `localhost` or a loopback address (no resolving)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
    return resolve_checked(parts.hostname, port, settings, field=field)


def resolve_checked(host: str, port: int, settings: Settings, *, field: str = "url"
                    ) -> list[IPAddress]:
    """The addresses `host` resolves to (once each, in the resolver's order), if
    metric-stream may connect to every one; `Forbidden` saying why not otherwise."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else "not a valid name"
        raise Forbidden(f"{host} cannot be resolved: {reason}", field=field) from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
                                   for info in infos))
    for address in addresses:
        reason = address_refusal(address, settings)
        if reason:
            raise Forbidden(f"{host} resolves to {address}, {reason}", field=field)
    return addresses


def connect_checked(host: str, port: int, settings: Settings,
                    connect: Callable[[tuple[str, int]], T], *,
                    errors: tuple[type[Exception], ...] = (OSError,)) -> T:
    """`connect((address, port))` to the first address of `host` that answers (`errors`
    move on to the next), every address checked first (`Forbidden` if one may not be
    called)."""
    failed: Exception | None = None
    for address in resolve_checked(host, port, settings):
        try:
            return connect((str(address), port))
        except errors as exc:
            failed = exc
    raise failed or OSError(f"{host} resolves to no address")


def checked_client(settings: Settings, **options: Any) -> httpx.Client:
    """An httpx client whose every connection (redirects too) is checked when it is made,
    to the address checked: `Forbidden` comes out of a request to a refused address."""
    import httpx

    return httpx.Client(transport=_checked_transport(settings), **options)


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



def _checked_transport(settings: Settings) -> httpx.HTTPTransport:
    """httpx's transport over a connection pool whose network backend connects only to
    checked addresses (httpcore asks the backend for every new connection; TLS still
    verifies the name asked for). Built on first use, so httpx loads only when needed."""
    import httpcore
    import httpx

    class CheckedBackend(httpcore.SyncBackend):
        def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                        local_address: str | None = None,
                        socket_options: Any = None) -> httpcore.NetworkStream:
            def connect(address: tuple[str, int]) -> httpcore.NetworkStream:
                return super(CheckedBackend, self).connect_tcp(
                    address[0], address[1], timeout, local_address, socket_options)

            return connect_checked(host, port, settings, connect,
                                   errors=(httpcore.ConnectError, httpcore.ConnectTimeout))

    class CheckedTransport(httpx.HTTPTransport):
        def __init__(self) -> None:  # httpx's own pool, but with the checking backend
            self._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(),
                                                 network_backend=CheckedBackend())

    return CheckedTransport()
