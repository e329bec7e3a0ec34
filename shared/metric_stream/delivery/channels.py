"""An endpoint's URL → its channel. Native channels by scheme; every other scheme
Apprise knows goes through Apprise (plain summary and link); anything else is refused
with a message naming the schemes that work.

| scheme | channel |
| --- | --- |
| `https://`, `http://`, `json://`, `jsons://` | generic webhook, signed per Standard Webhooks |
| `https://hooks.slack.com/services/...`, `slack://` | Slack incoming webhook (Block Kit) |
| `https://discord.com/api/webhooks/...`, `discord://` | Discord webhook (embed) |
| `tgram://` | Telegram Bot API |
| `mailto://`, `mailtos://` | email over SMTP (STARTTLS / TLS) |
| `ses://` | email through Amazon SES |
| `sns://` | SMS through Amazon SNS |
| `twilio://` | SMS through Twilio |
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from urllib.parse import urlsplit

from metric_stream.delivery.base import Channel
from metric_stream.errors import InvalidInput

# scheme -> "module:factory"; factories take the URL and return a Channel (or raise
# InvalidInput with field "url"). Modules are imported only when a scheme is used.
NATIVE: dict[str, str] = {
    "http": "metric_stream.delivery.webhook:WebhookChannel.from_url",
    "https": "metric_stream.delivery.webhook:WebhookChannel.from_url",
    "json": "metric_stream.delivery.webhook:WebhookChannel.from_url",
    "jsons": "metric_stream.delivery.webhook:WebhookChannel.from_url",
    "slack": "metric_stream.delivery.chat:SlackChannel.from_url",
    "discord": "metric_stream.delivery.chat:DiscordChannel.from_url",
    "tgram": "metric_stream.delivery.chat:TelegramChannel.from_url",
    "mailto": "metric_stream.delivery.email:SmtpChannel.from_url",
    "mailtos": "metric_stream.delivery.email:SmtpChannel.from_url",
    "ses": "metric_stream.delivery.email:SesChannel.from_url",
    "sns": "metric_stream.delivery.sms:SnsChannel.from_url",
    "twilio": "metric_stream.delivery.sms:TwilioChannel.from_url",
}
WEB_HOOK_HOSTS = {
    "hooks.slack.com": "metric_stream.delivery.chat:SlackChannel.from_url",
    "discord.com": "metric_stream.delivery.chat:DiscordChannel.from_url",
    "discordapp.com": "metric_stream.delivery.chat:DiscordChannel.from_url",
}


def _factory(target: str) -> Callable[[str], Channel]:
    module, _, attribute = target.partition(":")
    value: object = import_module(module)
    for name in attribute.split("."):
        value = getattr(value, name)
    return value  # type: ignore[return-value]


def parse_channel(url: str) -> Channel:
    """The channel of an endpoint URL; `InvalidInput` (field "url") saying what is wrong."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if not scheme:
        raise InvalidInput("must start with a scheme, e.g. https://, tgram://, mailto://",
                           field="url")
    host = parts.hostname or ""
    if scheme in ("http", "https") and host in WEB_HOOK_HOSTS and (
            host == "hooks.slack.com" or "/api/webhooks/" in parts.path):
        return _factory(WEB_HOOK_HOSTS[host])(url)
    if scheme in NATIVE:
        return _factory(NATIVE[scheme])(url)
    from metric_stream.delivery.apprise_channel import AppriseChannel

    return AppriseChannel.from_url(url)


def channel_kind(url: str) -> str | None:
    """The kind of channel a URL will use, cheaply (no validation): for records and
    reports before the send; None when the scheme is not a native one."""
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme in ("http", "https"):
        host = rest.split("/", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0].lower()
        if host == "hooks.slack.com":
            return "slack"
        if host in ("discord.com", "discordapp.com") and "/api/webhooks/" in rest:
            return "discord"
        return "webhook"
    return KINDS.get(scheme, "apprise" if scheme else None)


KINDS = {"json": "webhook", "jsons": "webhook", "slack": "slack", "discord": "discord",
         "tgram": "telegram", "mailto": "email", "mailtos": "email", "ses": "ses",
         "sns": "sns", "twilio": "twilio"}
