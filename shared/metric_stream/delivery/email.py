"""Email channels: SMTP and Amazon SES, sending the same MIME message built from the
job's `messages["email"]`: its text and HTML as alternatives, the report PDF attached
when the endpoint wants it, `X-Metric-Stream-Id: {traceId}:{endpointId}` and a
Message-ID made from that id (so a retry that reaches a mailbox twice is one message
to mail systems that drop duplicates).

URL formats (Apprise's):

    mailto://{user}:{password}@{smtp_host}[:{port}][/{to}...]?to={a@x.com},{b@y.com}
             &from={me@x.com}&name={Sender}
        STARTTLS, required (port 587 unless given)
    mailtos://{user}:{password}@{smtp_host}[:{port}]/?to=...   implicit TLS (port 465)
    mailto://{user}:{password}@gmail.com   Apprise's short form: from and to are
        user@gmail.com, sent through the provider's server (gmail.com, googlemail.com,
        outlook.com, hotmail.com, live.com, yahoo.com, icloud.com, me.com, fastmail.com)
        options: to, cc, bcc, from (`me@x.com` or `Name <me@x.com>`), name,
        smtp={server} (the host of the URL is then only the default sender domain),
        user, pass, mode=starttls|ssl, starttls=no (clear text: a loopback server only)
        Without `from`, the sender is the user (when it is an address) or user@{host};
        without `to`, the sender. Without a user, no login (a relay).
    ses://{from_address}/{region}[/{to}...]?to={a@x.com},{b@y.com}&cc=&bcc=&name=
        e.g. ses://reports@example.com/eu-west-1/?to=ops@example.com; the sender (or its
        domain) must be verified in SES. AWS credentials are the process's own (the
        Lambda role), never part of the URL.

Other Apprise options are ignored. smtplib and boto3 block: they run in a worker
thread. The SMTP connection goes only to an address the outbound check allows (the
address checked is the one connected), like the HTTP channels' resolver.
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import re
import smtplib
import socket
import ssl
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any, Literal
from urllib.parse import unquote, unquote_plus, urlsplit

from metric_stream.delivery.base import Channel, Outgoing, SendContext, SendResult, short
from metric_stream.delivery.chat import (
    MAX_RECIPIENTS,
    invalid,
    message_of,
    no_message,
    path_segments,
    probe_text,
    query_values,
    scrub,
    shown,
)
from metric_stream.delivery.safety import RefusedAddress
from metric_stream.errors import MetricStreamError
from metric_stream.services.outbound import address_refusal, check_outbound_url, is_loopback
from metric_stream.settings import Settings

Security = Literal["starttls", "tls", "none"]

HELO_NAME = "localhost.localdomain"
"""Our EHLO name: smtplib would look up this machine's FQDN on every send (a reverse
DNS query that can take seconds)."""

PROVIDERS: dict[str, tuple[str, int, Security]] = {
    "gmail.com": ("smtp.gmail.com", 587, "starttls"),
    "googlemail.com": ("smtp.gmail.com", 587, "starttls"),
    "outlook.com": ("smtp-mail.outlook.com", 587, "starttls"),
    "hotmail.com": ("smtp-mail.outlook.com", 587, "starttls"),
    "live.com": ("smtp-mail.outlook.com", 587, "starttls"),
    "yahoo.com": ("smtp.mail.yahoo.com", 465, "tls"),
    "icloud.com": ("smtp.mail.me.com", 587, "starttls"),
    "me.com": ("smtp.mail.me.com", 587, "starttls"),
    "fastmail.com": ("smtp.fastmail.com", 465, "tls"),
}
"""Apprise's short form `mailto://user:pass@gmail.com`: the domain's SMTP server."""

_ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})"
)
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)
_REGION = re.compile(r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}")
_ACCESS_KEY = re.compile(r"(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{12,124}")
_NO = ("no", "false", "0", "off")
_YES = ("yes", "true", "1", "on")


# Addresses and options ---------------------------------------------------------------


def email_address(value: str, what: str = "recipient") -> str:
    if not _ADDRESS.fullmatch(value):
        raise invalid(f"{what} {shown(value)} is not an email address (name@example.com)")
    return value


def _addresses(values: Iterable[str], what: str = "recipient") -> tuple[str, ...]:
    return tuple(dict.fromkeys(email_address(v, what) for v in values))


def _option(query: str, name: str) -> str | None:
    """The last value of a single-valued option (`+` read as a space, as in forms)."""
    value = None
    for pair in query.split("&"):
        key, _, raw = pair.partition("=")
        if unquote(key).strip().lower() == name:
            value = unquote_plus(raw).strip()
    return value


def _sender_option(query: str) -> tuple[str | None, str | None]:
    """(name, address) of `from=me@x.com` or `from=Name <me@x.com>`."""
    for pair in reversed(query.split("&")):
        key, _, raw = pair.partition("=")
        if unquote(key).strip().lower() == "from":
            name, address = parseaddr(unquote(raw).strip())
            return (name or None), email_address(address or unquote(raw).strip(), "sender")
    return None, None


def _clean_name(name: str | None) -> str | None:
    if name is None:
        return None
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()[:100]
    return name or None


def _check_recipients(count: int) -> None:
    if count > MAX_RECIPIENTS:
        raise invalid(f"has more than {MAX_RECIPIENTS} recipients (to, cc and bcc together)")


# The message --------------------------------------------------------------------------


def build_email(out: Outgoing, sender: str, name: str | None, to: Collection[str],
                cc: Collection[str] = ()) -> EmailMessage | SendResult:
    """The MIME message (multipart/alternative text and HTML, in multipart/mixed with
    the PDF when attached); a `SendResult` when the job has no email message."""
    if out.test:
        text = probe_text(out.endpoint_id)
        subject, body = "metric-stream test message", text + "\n"
        page: object = f"<p>{html.escape(text)}</p>"
    else:
        email = message_of(out, "email", Mapping)
        if email is None or not isinstance(email.get("text"), str):
            return no_message("email")
        subject = str(email.get("subject") or "Metric Stream report")
        body, page = email["text"], email.get("html")
    domain = sender.rpartition("@")[2]
    message = EmailMessage()
    message["Subject"] = " ".join(subject.split())
    message["From"] = Address(display_name=name or "", addr_spec=sender)
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    message["Date"] = formatdate(usegmt=True)
    # a test send reuses its id ("test:{endpoint}"): a fresh Message-ID, or mail systems
    # that drop duplicates would hide the second test
    message["Message-ID"] = (make_msgid(domain=domain) if out.test
                             else f"<{out.message_id.replace(':', '.')}@{domain}>")
    message["X-Metric-Stream-Id"] = out.message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body, cte="quoted-printable")
    if isinstance(page, str) and page:
        message.add_alternative(page, subtype="html", cte="quoted-printable")
    if out.pdf is not None and not out.test:
        message.add_attachment(out.pdf, maintype="application", subtype="pdf",
                               filename=out.pdf_name)
    return message


# SMTP ---------------------------------------------------------------------------------


def _connect(host: str, port: int, timeout: float, settings: Settings) -> socket.socket:
    """A connection to the first address of `host` the outbound check allows."""
    allowed = []
    reasons = []
    for family, kind, proto, _, address in socket.getaddrinfo(host, port,
                                                                type=socket.SOCK_STREAM):
        ip = ipaddress.ip_address(str(address[0]).split("%", 1)[0])
        reason = address_refusal(ip, settings)
        if reason is None:
            allowed.append((family, kind, proto, address))
        else:
            reasons.append(f"{ip} is {reason}")
    if not allowed:
        raise RefusedAddress(f"{host} is refused: " + "; ".join(reasons[:3]))
    last: OSError = OSError(f"{host} has no address")
    for family, kind, proto, address in allowed:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        return sock
    raise last


class _CheckedSMTP(smtplib.SMTP):
    settings: Settings

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return _connect(host, port, timeout, self.settings)


class _CheckedSMTPS(smtplib.SMTP_SSL, _CheckedSMTP):
    """Implicit TLS over `_CheckedSMTP`'s connection (SMTP_SSL wraps what it gets)."""


@dataclass(frozen=True)
class SmtpChannel(Channel):
    server: str
    port: int
    security: Security
    sender: str
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    sender_name: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    kind = "email"

    @classmethod
    def from_url(cls, url: str) -> SmtpChannel:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("mailto", "mailtos"):
            raise invalid("must be an email URL: mailto://user:password@smtp.example.com/"
                          "?to=you@example.com")
        try:
            host, port = parts.hostname or "", parts.port
        except ValueError:
            raise invalid("has an invalid port") from None
        if not host:
            raise invalid("names no mail server: mailto://user:password@smtp.example.com/"
                          "?to=you@example.com")
        query = parts.query
        user = unquote(parts.username) if parts.username else _option(query, "user")
        password = unquote(parts.password) if parts.password is not None else None
        password = password if password is not None else _option(query, "pass")
        if bool(user) != bool(password):
            raise invalid("has a user without a password, or a password without a user "
                          "(mailto://user:password@host)")
        security = _security(scheme, query)
        server = _option(query, "smtp")
        if server:
            server = server.lower()
        elif host in PROVIDERS and port is None:
            server, port, provider_security = PROVIDERS[host]
            if _option(query, "mode") is None:
                security = provider_security
        else:
            server = host
        server = server.strip("[]")
        if not (_HOSTNAME.fullmatch(server) or _is_ip(server)):
            raise invalid(f"the mail server {shown(server)} is not a host name")
        if security == "none" and not is_loopback(server):
            raise invalid("sending without TLS (starttls=no) is allowed only to a loopback "
                          "server such as 127.0.0.1: use STARTTLS (mailto://) or TLS "
                          "(mailtos://)")
        name, sender = _sender_option(query)
        if sender is None:
            if user and "@" in user:
                sender = email_address(user, "sender")
            elif user:
                sender = email_address(f"{user}@{host}", "sender")
            else:
                raise invalid("names no sender: add from=me@example.com")
        to = _addresses(path_segments(parts.path) + query_values(query, "to")) or (sender,)
        cc = _addresses(query_values(query, "cc"))
        bcc = _addresses(query_values(query, "bcc"))
        _check_recipients(len(set(to + cc + bcc)))
        return cls(server=server, port=port or (465 if security == "tls" else 587),
                   security=security, sender=sender, to=to, cc=cc, bcc=bcc,
                   sender_name=_clean_name(_option(query, "name") or name),
                   user=user or None, password=password or None)

    @property
    def host(self) -> str:
        return self.server

    def check(self, settings: Settings) -> None:
        server = f"[{self.server}]" if ":" in self.server else self.server
        check_outbound_url(f"http://{server}:{self.port}/", settings)

    async def send(self, out: Outgoing, ctx: SendContext) -> SendResult:
        message = build_email(out, self.sender, self.sender_name, self.to, self.cc)
        if isinstance(message, SendResult):
            return message
        return await asyncio.to_thread(self._deliver, message, ctx.settings)

    def _deliver(self, message: EmailMessage, settings: Settings) -> SendResult:
        secrets = [self.password] if self.password else []
        timeout = settings.smtp_timeout_s
        context = ssl.create_default_context()
        smtp: _CheckedSMTP
        if self.security == "tls":
            smtp = _CheckedSMTPS(local_hostname=HELO_NAME, timeout=timeout, context=context)
        else:
            smtp = _CheckedSMTP(local_hostname=HELO_NAME, timeout=timeout)
        smtp.settings = settings
        try:
            try:
                return self._converse(smtp, message, context)
            finally:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
        except smtplib.SMTPRecipientsRefused as exc:
            address, (code, reply) = next(iter(exc.recipients.items()))
            return _refusal(code, reply, secrets, f"recipient {address} refused")
        except smtplib.SMTPResponseException as exc:
            return _refusal(exc.smtp_code, exc.smtp_error, secrets)
        except smtplib.SMTPServerDisconnected as exc:
            if isinstance(exc.__context__, TimeoutError):  # smtplib's name for a timeout
                return self._timed_out(timeout)
            return SendResult(ok=False, retryable=True,
                              error=scrub(f"SMTP: the server closed the connection ({exc})",
                                          secrets))
        except smtplib.SMTPException as exc:
            return SendResult(ok=False, error=scrub(f"SMTP: {exc}", secrets))
        except RefusedAddress as exc:
            return SendResult(ok=False, error=short(str(exc)))
        except ssl.SSLError as exc:
            return SendResult(ok=False, error=short(
                f"SMTP: TLS with {self.server} failed: {exc.reason or exc}"))
        except TimeoutError:
            return self._timed_out(timeout)
        except OSError as exc:
            return SendResult(ok=False, retryable=True, error=scrub(
                f"SMTP: cannot reach {self.server}:{self.port}: {exc}", secrets))

    def _timed_out(self, timeout: float) -> SendResult:
        return SendResult(ok=False, retryable=True, error=short(
            f"SMTP: no answer from {self.server}:{self.port} within {timeout:g} s"))

    def _converse(self, smtp: smtplib.SMTP, message: EmailMessage,
                  context: ssl.SSLContext) -> SendResult:
        code, reply = smtp.connect(self.server, self.port)
        if code != 220:
            raise smtplib.SMTPConnectError(code, reply)
        smtp.ehlo()
        if self.security == "starttls":
            if not smtp.has_extn("starttls"):
                return SendResult(ok=False, error=short(
                    f"SMTP: {self.server} does not offer STARTTLS: not sending in clear "
                    "text (starttls=no is allowed for a loopback server only)"))
            smtp.starttls(context=context)
            smtp.ehlo()
        if self.user and self.password:
            smtp.login(self.user, self.password)
        recipients = list(dict.fromkeys(self.to + self.cc + self.bcc))
        refused = smtp.send_message(message, self.sender, recipients)
        if refused:  # some recipients took it, not these
            address, (code, reply) = next(iter(refused.items()))
            secrets = [self.password] if self.password else []
            return _refusal(code, reply, secrets, f"recipient {address} refused")
        return SendResult(ok=True, status=250)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _security(scheme: str, query: str) -> Security:
    security: Security = "tls" if scheme == "mailtos" else "starttls"
    mode = (_option(query, "mode") or "").lower()
    if mode in ("ssl", "tls"):
        security = "tls"
    elif mode == "starttls":
        security = "starttls"
    elif mode in ("insecure", "plain", "none"):
        security = "none"
    elif mode:
        raise invalid("mode must be starttls or ssl")
    starttls = (_option(query, "starttls") or "").lower()
    if starttls in _NO:
        if security == "tls":
            raise invalid("starttls=no contradicts mailtos:// (implicit TLS)")
        security = "none"
    elif starttls and starttls not in _YES:
        raise invalid("starttls must be yes or no")
    return security


def _refusal(code: int, reply: bytes | str, secrets: Iterable[str],
             what: str | None = None) -> SendResult:
    """An SMTP reply that refused the mail: 4xx (and no code) try again later, 5xx final."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    detail = f"{what}: {text}" if what else text
    return SendResult(ok=False, status=code if code > 0 else None,
                      retryable=not 500 <= code < 600,
                      error=scrub(f"SMTP {code}: {detail}", secrets))


# Amazon SES ---------------------------------------------------------------------------

_AWS_CLIENTS = threading.Lock()
_RETRYABLE_AWS_CODES = frozenset({
    "Throttling", "ThrottlingException", "Throttled", "ThrottledException",
    "TooManyRequestsException", "RequestThrottled", "ServiceUnavailable", "InternalFailure",
    "InternalError", "InternalErrorException", "RequestTimeout", "RequestTimeoutException",
    "KMSThrottling", "KMSThrottlingException", "SlowDown",
})
_AUTH_WORDS = ("Auth", "Token", "Signature", "AccessDenied", "Credential", "Unrecognized",
               "Security", "OptInRequired")
"""Error codes whose AWS message may describe the caller's identity: reported by code."""


def aws_region(value: str) -> str:
    if _REGION.fullmatch(value):
        return value
    if _ACCESS_KEY.fullmatch(value) or len(value) > 16:
        raise invalid("AWS credentials are not part of the URL (metric-stream uses its own, "
                      "e.g. the Lambda role): put the region there, e.g. us-east-1")
    raise invalid(f"{shown(value)} is not an AWS region (e.g. us-east-1, eu-west-1)")


def aws_client(ctx: SendContext, service: str, region: str) -> Any:
    """A boto3 client, made once per send context (one delivery run), service and
    region: making one takes tens of milliseconds. Call it in a worker thread."""
    key = f"aws-client:{service}:{region}"
    with _AWS_CLIENTS:  # boto3 sessions are not thread-safe; clients are, once made
        client = ctx.extra.get(key)
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(retries={"mode": "standard", "max_attempts": 2},
                            connect_timeout=ctx.timeout_s, read_timeout=ctx.timeout_s)
            client = boto3.session.Session().client(
                service, region_name=region,  # type: ignore[call-overload]
                endpoint_url=ctx.settings.aws_endpoint_url, config=config)
            ctx.extra[key] = client
    return client


def aws_send(ctx: SendContext, label: str, service: str, region: str,
             call: Callable[[Any], object], *, gone_codes: Collection[str] = ()) -> SendResult:
    """`call(client)` (blocking: run it in a worker thread), its failures mapped:
    throttling and 5xx retryable, `gone_codes` gone, any other error final."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        CredentialRetrievalError,
        NoCredentialsError,
        ParamValidationError,
        PartialCredentialsError,
    )

    try:
        call(aws_client(ctx, service, region))
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Unknown")
        message = str(error.get("Message") or "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        auth = any(word in code for word in _AUTH_WORDS)
        gone = code in gone_codes
        retryable = not gone and (code in _RETRYABLE_AWS_CODES
                                  or (isinstance(status, int) and status >= 500))
        return SendResult(ok=False, status=status if isinstance(status, int) else None,
                          retryable=retryable, gone=gone,
                          error=short(f"{label} {code}" if auth or not message
                                      else f"{label} {code}: {message}"))
    except (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError):
        return SendResult(ok=False, error=f"{label}: no usable AWS credentials")
    except ParamValidationError as exc:
        return SendResult(ok=False, error=short(f"{label}: {exc}"))
    except BotoCoreError as exc:
        return SendResult(ok=False, retryable=True, error=short(f"{label}: {exc}"))
    except MetricStreamError as exc:
        return SendResult(ok=False, error=short(f"{label}: {exc.message}"))
    return SendResult(ok=True, status=200)


@dataclass(frozen=True)
class SesChannel(Channel):
    sender: str
    region: str
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    sender_name: str | None = None
    kind = "ses"

    @classmethod
    def from_url(cls, url: str) -> SesChannel:
        parts = urlsplit(url)
        if parts.scheme.lower() != "ses":
            raise invalid("must be an SES URL: ses://{from_address}/{region}/?to=you@example.com")
        sender = email_address(unquote(parts.netloc), "the sender") if parts.netloc else None
        if sender is None:
            raise invalid("names no sender: ses://reports@example.com/us-east-1/"
                          "?to=you@example.com")
        segments = path_segments(parts.path)
        if not segments:
            raise invalid("names no AWS region: ses://reports@example.com/us-east-1/"
                          "?to=you@example.com")
        region = aws_region(segments[0])
        to = _addresses(segments[1:] + query_values(parts.query, "to"))
        if not to:
            raise invalid("names no recipient: add to=you@example.com")
        cc = _addresses(query_values(parts.query, "cc"))
        bcc = _addresses(query_values(parts.query, "bcc"))
        _check_recipients(len(set(to + cc + bcc)))
        return cls(sender=sender, region=region, to=to, cc=cc, bcc=bcc,
                   sender_name=_clean_name(_option(parts.query, "name")))

    @property
    def host(self) -> str:
        return f"email.{self.region}.amazonaws.com"

    async def send(self, out: Outgoing, ctx: SendContext) -> SendResult:
        message = build_email(out, self.sender, self.sender_name, self.to, self.cc)
        if isinstance(message, SendResult):
            return message
        raw = message.as_bytes(policy=SMTP_POLICY)
        destinations = list(dict.fromkeys(self.to + self.cc + self.bcc))

        def call(client: Any) -> object:
            return client.send_raw_email(Source=self.sender, Destinations=destinations,
                                         RawMessage={"Data": raw})

        return await asyncio.to_thread(aws_send, ctx, "SES", "ses", self.region, call)
