"""Chat channels: Telegram's Bot API and the Slack and Discord incoming webhooks, each
sent its own message of the job (`messages["telegram"]`, `["slack"]`, `["discord"]`).

URL formats (Apprise's, where Apprise has one):

    tgram://{bot_token}/{chat_id}[/{chat_id}...][?to={chat_id},...]
        bot_token `123456789:AA...` (an optional `bot` prefix is dropped); chat_id a
        number (`-100...` for groups and channels) or `@channelname`
    discord://[{botname}@]{webhook_id}/{webhook_token}[?thread_id={id}]
    https://discord.com/api/webhooks/{webhook_id}/{webhook_token}   (discordapp.com too)
    slack://[{botname}@]{T...}/{B...}/{secret}
    https://hooks.slack.com/services/{T...}/{B...}/{secret}

Other Apprise options are ignored. Requests go to the service's base URL of the
settings (`telegram_base_url`, `discord_base_url`, `slack_base_url`), never to the host
written in the endpoint URL. A report PDF is sent as a Telegram document and a Discord
attachment; Slack incoming webhooks cannot carry files, so Slack gets the link only.

The HTTP helpers here (`post`, `failure`, `send_each`) serve every HTTP channel of
this package (Twilio too). Tokens sit in request paths, so every error text is
scrubbed of them.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import aiohttp

from metric_stream.delivery.base import (
    Channel,
    Outgoing,
    SendContext,
    SendResult,
    retry_after_seconds,
    short,
)
from metric_stream.delivery.safety import refused
from metric_stream.errors import InvalidInput, MetricStreamError

MAX_RECIPIENTS = 50
"""Recipients of one endpoint (chats, phone numbers, addresses): SES's limit per message,
and a bound on what one endpoint can fan out to."""

TEST_TEXT = "metric-stream test message for endpoint {endpoint} — delivery works"


def invalid(message: str) -> InvalidInput:
    return InvalidInput(message, field="url")


def probe_text(endpoint_id: str, dash: str = "—") -> str:
    """The test message (`Outgoing.test`) in plain text."""
    return TEST_TEXT.format(endpoint=endpoint_id).replace("—", dash)


def shown(value: str) -> str:
    """A value that failed validation, quoted for the error message; a long one without
    `@` (it could be a token put in the wrong place) by its length only."""
    if len(value) <= 16 or (len(value) <= 80 and "@" in value):
        return repr(value)
    return f"a value of {len(value)} characters"


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` without any of `secrets` (as written or percent-encoded), shortened."""
    for secret in secrets:
        if len(secret) >= 4:
            for form in {secret, quote(secret, safe=""), quote(secret)}:
                text = text.replace(form, "***")
    return short(text)


def path_segments(path: str) -> list[str]:
    return [unquote(segment) for segment in path.split("/") if segment]


def query_values(query: str, name: str) -> list[str]:
    """Every comma-separated value of option `name` (`+` kept: it starts phone numbers
    and sits in email addresses)."""
    values: list[str] = []
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if unquote(key).strip().lower() == name:
            values += [v.strip() for v in re.split(r"[,;\s]+", unquote(value)) if v.strip()]
    return values


def json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def body_text(body: bytes) -> str:
    return body[:500].decode("utf-8", "replace")


def message_of(out: Outgoing, key: str, kind: type) -> Any:
    """The job's message for one channel, or None when the job has none of that shape."""
    value = out.messages.get(key)
    return value if isinstance(value, kind) and value else None


def no_message(key: str) -> SendResult:
    return SendResult(ok=False, error=f"the job has no {key} message to send")


# HTTP --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes
    """At most `SendContext.max_body_bytes` of the answer."""
    retry_after: str | None = None


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await response.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


async def post(ctx: SendContext, url: str, *, secrets: Sequence[str] = (),
               **request: Any) -> HttpAnswer | SendResult:
    """POST through the context's session (redirects not followed, the body read up to
    the cap); a failure to get an answer as a retryable `SendResult`, scrubbed."""
    try:
        async with ctx.session.post(url, allow_redirects=False,
                                    timeout=aiohttp.ClientTimeout(total=ctx.timeout_s),
                                    **request) as response:
            body = await read_capped(response, ctx.max_body_bytes)
            return HttpAnswer(response.status, body, response.headers.get("Retry-After"))
    except TimeoutError:
        return SendResult(ok=False, retryable=True,
                          error=f"no answer within {ctx.timeout_s:g} s (timed out)")
    except (aiohttp.ClientError, OSError) as exc:
        reason = refused(exc)
        if reason:  # the resolver refused the address: trying again will not help
            return SendResult(ok=False, retryable=False, error=scrub(reason, secrets))
        return SendResult(ok=False, retryable=True,
                          error=scrub(f"no answer: {type(exc).__name__}: {exc}", secrets))
    except MetricStreamError as exc:
        return SendResult(ok=False, retryable=False, error=scrub(exc.message, secrets))


def failure(service: str, status: int, detail: str, *, secrets: Iterable[str] = (),
            retry_after: str | float | None = None, gone: bool = False) -> SendResult:
    """A refused HTTP send: 410 (or `gone`) gone for good; 408, 425, 429 and 5xx
    retryable (waiting `retry_after`); any other status final. A 3xx is a redirect,
    never followed."""
    if 300 <= status < 400:
        detail = "a redirect (redirects are not followed)"
    gone = gone or status == 410
    retryable = not gone and (status in (408, 425, 429) or status >= 500)
    detail = detail.strip()
    return SendResult(ok=False, status=status, retryable=retryable, gone=gone,
                      retry_after=retry_after_seconds(retry_after) if retryable else None,
                      error=scrub(f"{service} {status}: {detail}" if detail
                                  else f"{service} {status}", secrets))


def combine(results: Sequence[tuple[str, SendResult]]) -> SendResult:
    """One endpoint's outcome from its recipients': sent when every one was; else the
    first failure, naming its recipient when there are several, and gone only when
    every recipient is gone (one blocked chat does not disable the others)."""
    failures = [(label, result) for label, result in results if not result.ok]
    if not failures:
        return results[-1][1]
    label, first = failures[0]
    if len(results) == 1:
        return first
    return replace(first, gone=all(result.gone for _, result in results),
                   error=short(f"{label}: {first.error or 'failed'}"))


async def send_each(recipients: Sequence[str],
                    send_one: Callable[[str], Awaitable[SendResult]]) -> SendResult:
    """Send to each recipient in turn. A retryable failure stops the round (the service
    is limiting or failing: the retry sends again); a final one does not stop the
    other recipients."""
    results: list[tuple[str, SendResult]] = []
    for recipient in recipients:
        result = await send_one(recipient)
        results.append((recipient, result))
        if not result.ok and result.retryable:
            break
    return combine(results)


def _base(url: str) -> str:
    return url.rstrip("/")


def _botname(netloc: str) -> tuple[str | None, str]:
    """(`botname` of `botname@rest`, rest)."""
    name, at, rest = netloc.rpartition("@")
    return ((unquote(name) or None) if at else None), rest


def _clean_name(name: str | None) -> str | None:
    if name is None:
        return None
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()[:80]
    return name or None


# Telegram ----------------------------------------------------------------------------

_TELEGRAM_TOKEN = re.compile(r"(?:bot)?(\d{1,20}:[A-Za-z0-9_-]{1,200})")
_TELEGRAM_CHAT = re.compile(r"-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31}")
_TELEGRAM_GONE = ("blocked", "kicked", "deactivated", "chat not found", "chat was deleted",
                  "not a member", "can't initiate", "peer_id_invalid")
"""Descriptions of a 400/403 that mean the chat is lost for good (not, e.g., "not
enough rights", which the chat's admins can fix)."""
TELEGRAM_CAPTION_LIMIT = 1024


@dataclass(frozen=True)
class TelegramChannel(Channel):
    token: str = field(repr=False)
    chat_ids: tuple[str, ...] = ()
    kind = "telegram"

    @classmethod
    def from_url(cls, url: str) -> TelegramChannel:
        parts = urlsplit(url)
        if parts.scheme.lower() != "tgram":
            raise invalid("must be a Telegram URL: tgram://{bot_token}/{chat_id}")
        if "@" in parts.netloc:
            raise invalid("a Telegram URL has no user part: tgram://{bot_token}/{chat_id}")
        match = _TELEGRAM_TOKEN.fullmatch(unquote(parts.netloc))
        if not match:
            raise invalid("the Telegram bot token is missing or malformed (expected "
                          "tgram://{bot_token}/{chat_id}, the token as BotFather gives it: "
                          "digits, a colon, then letters, digits, - and _)")
        chats = path_segments(parts.path) + query_values(parts.query, "to")
        if parts.fragment:
            chats.append(unquote(parts.fragment))
        if not chats:
            raise invalid("names no Telegram chat: add its id after the bot token, "
                          "e.g. tgram://{bot_token}/-1001234567890 or /@mychannel")
        for chat in chats:
            if not _TELEGRAM_CHAT.fullmatch(chat):
                raise invalid(f"{shown(chat)} is not a Telegram chat id (a number such "
                              "as 123456789 or -1001234567890, or @channelname)")
        if len(chats) > MAX_RECIPIENTS:
            raise invalid(f"names more than {MAX_RECIPIENTS} Telegram chats")
        return cls(match.group(1), tuple(dict.fromkeys(chats)))

    @property
    def host(self) -> str:
        return "api.telegram.org"

    async def send(self, out: Outgoing, ctx: SendContext) -> SendResult:
        if out.test:
            text = (f"<b>metric-stream test message</b> for endpoint "
                    f"<code>{html.escape(out.endpoint_id)}</code> — delivery works")
        else:
            text = message_of(out, "telegram", str)
            if text is None:
                return no_message("telegram")
        base = f"{_base(ctx.settings.telegram_base_url)}/bot{self.token}"
        pdf = None if out.test else out.pdf

        async def one(chat: str) -> SendResult:
            result = await self._call(ctx, f"{base}/sendMessage", json={
                "chat_id": chat, "text": text, "parse_mode": "HTML",
                "disable_web_page_preview": True})
            if result.ok and pdf is not None:
                form = aiohttp.FormData()
                form.add_field("chat_id", chat)
                form.add_field("caption", _caption(out))
                form.add_field("document", pdf, filename=out.pdf_name,
                               content_type="application/pdf")
                result = await self._call(ctx, f"{base}/sendDocument", data=form)
            return result

        return await send_each(self.chat_ids, one)

    async def _call(self, ctx: SendContext, url: str, **request: Any) -> SendResult:
        answer = await post(ctx, url, secrets=[self.token], **request)
        if isinstance(answer, SendResult):
            return answer
        return telegram_result(answer, secrets=[self.token])


def _caption(out: Outgoing) -> str:
    email = out.messages.get("email")
    subject = email.get("subject") if isinstance(email, Mapping) else None
    text = subject if isinstance(subject, str) and subject else "Metric Stream report"
    return short(text, TELEGRAM_CAPTION_LIMIT)


def telegram_result(answer: HttpAnswer, *, secrets: Sequence[str] = ()) -> SendResult:
    """A Bot API answer: `{"ok": false, "error_code", "description", "parameters":
    {"retry_after", "migrate_to_chat_id"}}` on failure."""
    if 200 <= answer.status < 300:
        return SendResult(ok=True, status=answer.status)
    data = json_object(answer.body)
    description = str(data.get("description") or body_text(answer.body))
    parameters = data.get("parameters")
    parameters = parameters if isinstance(parameters, dict) else {}
    lowered = description.lower()
    gone = answer.status in (400, 403) and any(word in lowered for word in _TELEGRAM_GONE)
    moved = parameters.get("migrate_to_chat_id")
    if isinstance(moved, int):
        description += f" (the group is now chat {moved}: change the endpoint URL)"
    retry_after = parameters.get("retry_after")
    if not isinstance(retry_after, int | float):
        retry_after = answer.retry_after
    return failure("Telegram", answer.status, description, secrets=secrets,
                   retry_after=retry_after, gone=gone)


# Discord -----------------------------------------------------------------------------

_DISCORD_HOSTS = ("discord.com", "discordapp.com")
_SNOWFLAKE = re.compile(r"\d{1,25}")
_WEBHOOK_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,200}")


@dataclass(frozen=True)
class DiscordChannel(Channel):
    webhook_id: str
    token: str = field(repr=False)
    username: str | None = None
    thread_id: str | None = None
    kind = "discord"

    @classmethod
    def from_url(cls, url: str) -> DiscordChannel:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "discord":
            username, webhook_id = _botname(parts.netloc)
            rest = path_segments(parts.path)
            shape = "discord://{webhook_id}/{webhook_token}"
        elif scheme in ("https", "http") and (parts.hostname or "") in _DISCORD_HOSTS:
            username = None
            segments = path_segments(parts.path)
            if segments[:2] != ["api", "webhooks"]:
                raise invalid("is not a Discord webhook URL "
                              "(https://discord.com/api/webhooks/{id}/{token})")
            webhook_id, rest = (segments[2] if len(segments) > 2 else ""), segments[3:]
            shape = "https://discord.com/api/webhooks/{id}/{token}"
        else:
            raise invalid("must be a Discord webhook URL: discord://{webhook_id}/"
                          "{webhook_token} or https://discord.com/api/webhooks/{id}/{token}")
        if not _SNOWFLAKE.fullmatch(unquote(webhook_id)):
            raise invalid(f"the Discord webhook id is missing or not a number ({shape})")
        if not rest or not _WEBHOOK_TOKEN.fullmatch(rest[0]):
            raise invalid(f"the Discord webhook token is missing or malformed ({shape})")
        if len(rest) > 1:
            raise invalid(f"has more after the Discord webhook token than {shape} allows")
        threads = query_values(parts.query, "thread_id") or query_values(parts.query, "thread")
        if threads and not _SNOWFLAKE.fullmatch(threads[0]):
            raise invalid("the Discord thread_id must be a number")
        return cls(unquote(webhook_id), rest[0], _clean_name(username),
                   threads[0] if threads else None)

    @property
    def host(self) -> str:
        return "discord.com"

    async def send(self, out: Outgoing, ctx: SendContext) -> SendResult:
        payload: dict[str, Any]
        if out.test:
            payload = {"content": probe_text(f"`{out.endpoint_id}`"),
                       "allowed_mentions": {"parse": []}}
        else:
            message = message_of(out, "discord", Mapping)
            if message is None:
                return no_message("discord")
            payload = dict(message)
        if self.username:
            payload["username"] = self.username
        url = (f"{_base(ctx.settings.discord_base_url)}/api/webhooks/{self.webhook_id}/"
               f"{self.token}?wait=true")
        if self.thread_id:
            url += f"&thread_id={self.thread_id}"
        request: dict[str, Any] = {"json": payload}
        if out.pdf is not None and not out.test:
            payload["attachments"] = [{"id": 0, "filename": out.pdf_name}]
            form = aiohttp.FormData()
            form.add_field("payload_json", json.dumps(payload), content_type="application/json")
            form.add_field("files[0]", out.pdf, filename=out.pdf_name,
                           content_type="application/pdf")
            request = {"data": form}
        answer = await post(ctx, url, secrets=[self.token], **request)
        if isinstance(answer, SendResult):
            return answer
        return discord_result(answer, secrets=[self.token])


def discord_result(answer: HttpAnswer, *, secrets: Sequence[str] = ()) -> SendResult:
    """A webhook answer: `{"message", "code"}` on failure, `"retry_after"` (seconds) on
    429; 404 (Unknown Webhook, code 10015) means the webhook was deleted."""
    if 200 <= answer.status < 300:
        return SendResult(ok=True, status=answer.status)
    data = json_object(answer.body)
    detail = str(data.get("message") or body_text(answer.body))
    if isinstance(data.get("code"), int) and data["code"]:
        detail += f" (code {data['code']})"
    retry_after = data.get("retry_after")
    if not isinstance(retry_after, int | float):
        retry_after = answer.retry_after
    return failure("Discord", answer.status, detail, secrets=secrets,
                   retry_after=retry_after, gone=answer.status == 404)


# Slack -------------------------------------------------------------------------------

_SLACK_TOKEN = re.compile(r"[A-Za-z0-9]{1,64}")
_SLACK_GONE = ("no_service", "channel_not_found", "no_team", "channel_is_archived")
_SLACK_SHAPE = "slack://{T...}/{B...}/{secret} or https://hooks.slack.com/services/T/B/X"


@dataclass(frozen=True)
class SlackChannel(Channel):
    team: str
    bot: str
    secret: str = field(repr=False)
    username: str | None = None
    kind = "slack"

    @classmethod
    def from_url(cls, url: str) -> SlackChannel:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "slack":
            username, first = _botname(parts.netloc)
            tokens = [unquote(first), *path_segments(parts.path)]
        elif scheme in ("https", "http") and parts.hostname == "hooks.slack.com":
            username = None
            segments = path_segments(parts.path)
            if segments[:1] != ["services"]:
                raise invalid(f"is not a Slack incoming webhook URL ({_SLACK_SHAPE})")
            tokens = segments[1:]
        else:
            raise invalid(f"must be a Slack incoming webhook URL: {_SLACK_SHAPE}")
        if tokens and tokens[0].lower().startswith(("xoxb-", "xoxp-", "xoxa-")):
            raise invalid("Slack OAuth (bot or user) tokens are not supported: use an "
                          f"incoming webhook ({_SLACK_SHAPE})")
        if parts.fragment or len(tokens) > 3 or any(t.startswith("#") for t in tokens):
            raise invalid("a Slack incoming webhook posts to the channel chosen when it was "
                          f"made: remove the channel from the URL ({_SLACK_SHAPE})")
        if len(tokens) < 3 or not all(_SLACK_TOKEN.fullmatch(t) for t in tokens):
            raise invalid(f"needs the webhook's three tokens, letters and digits ({_SLACK_SHAPE})")
        return cls(tokens[0], tokens[1], tokens[2], _clean_name(username))

    @property
    def host(self) -> str:
        return "hooks.slack.com"

    async def send(self, out: Outgoing, ctx: SendContext) -> SendResult:
        payload: dict[str, Any]
        if out.test:
            endpoint = out.endpoint_id.replace("&", "&amp;").replace("<", "&lt;")
            payload = {"text": probe_text(f"`{endpoint.replace('>', '&gt;')}`")}
        else:
            message = message_of(out, "slack", Mapping)
            if message is None:
                return no_message("slack")
            payload = dict(message)
        if self.username:
            payload["username"] = self.username
        url = f"{_base(ctx.settings.slack_base_url)}/services/{self.team}/{self.bot}/{self.secret}"
        answer = await post(ctx, url, secrets=[self.secret], json=payload)
        if isinstance(answer, SendResult):
            return answer
        return slack_result(answer, secrets=[self.secret])


def slack_result(answer: HttpAnswer, *, secrets: Sequence[str] = ()) -> SendResult:
    """An incoming webhook's answer: `ok` with 200; otherwise an error word
    (`invalid_payload`, `no_service`, `channel_is_archived`...) as the body."""
    if 200 <= answer.status < 300:
        return SendResult(ok=True, status=answer.status)
    text = body_text(answer.body)
    gone = answer.status == 404 or (answer.status < 500 and text.strip() in _SLACK_GONE)
    return failure("Slack", answer.status, text, secrets=secrets,
                   retry_after=answer.retry_after, gone=gone)
