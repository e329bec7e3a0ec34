"""The native delivery channels against local fakes of their services (Telegram,
Discord, Slack, Twilio over HTTP on 127.0.0.1; SMTP with aiosmtpd; SES and SNS under
moto): what each sends, how each service's answers map to a `SendResult` (sent, retry
later, gone, final), and that no secret of an endpoint URL reaches an error."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import aiohttp
import pytest

from metric_stream.delivery.base import Channel, Outgoing, SendContext, SendResult
from metric_stream.delivery.channels import parse_channel
from metric_stream.delivery.chat import DiscordChannel, SlackChannel, TelegramChannel
from metric_stream.delivery.email import SesChannel, SmtpChannel
from metric_stream.delivery.safety import SafeResolver
from metric_stream.delivery.sms import SnsChannel, TwilioChannel
from metric_stream.errors import Forbidden, InvalidInput
from metric_stream.report.messages import build_messages
from metric_stream.report.summary import AlertLine, MoverLine, ReportSummary
from metric_stream.settings import Settings
from tests.delivery_fakes import (
    FakeHttpServer,
    FakeSmtpServer,
    Reply,
    discord_error,
    fake_discord,
    fake_slack,
    fake_telegram,
    fake_twilio,
    slack_error,
    telegram_error,
    twilio_error,
)

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
TOKEN_SECRET = TOKEN.split(":")[1]
DISCORD_TOKEN = "Xk3vQp9LmZr2TtYw8NbC-sd_Ufh1Gq4oJeR7aVyKzPi6"
SLACK_SECRET = "24charsecretABCDEFGHIJKL"
TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "f3a9c1d2e4b5a6c7d8e9f0a1b2c3d4e5"
PASSWORD = "s3cret-pa55word"
MOTO_ACCOUNT = "123456789012"  # moto's default account

SUMMARY = ReportSummary(
    trace_id="trace_20261129_060000_3fa9c1",
    created_at=datetime(2026, 11, 29, 6, 0, tzinfo=UTC),
    status="complete",
    demo=False,
    kpi_count=3,
    alerts=(AlertLine("fng", "Fear & Greed", "high", 82.0, 75.0, "index"),),
    movers=(MoverLine("btc", "Bitcoin price", 3.456, 2250.0, 67234.5, "USD"),),
    headline="Bitcoin rose 3.5% while sentiment turned greedy.",
    llm_status="ok",
    report_url="https://reports.example.com/api/documents/trace_20261129_060000_3fa9c1",
)
MESSAGES = build_messages(SUMMARY)
PDF = b"%PDF-1.4\n% fake report\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"


def outgoing(**changes: Any) -> Outgoing:
    options: dict[str, Any] = {"trace_id": SUMMARY.trace_id, "endpoint_id": "ops-chat",
                               "messages": MESSAGES}
    options.update(changes)
    return Outgoing(**options)


def send(channel: Channel, out: Outgoing, settings: Settings, *, timeout_s: float = 5.0,
         max_body_bytes: int = 64 * 1024, safe: bool = False) -> SendResult:
    """`channel.send` in a fresh loop and session (the engine's checked resolver when
    `safe`)."""

    async def run() -> SendResult:
        connector = aiohttp.TCPConnector(resolver=SafeResolver(settings)) if safe else None
        async with aiohttp.ClientSession(connector=connector) as session:
            ctx = SendContext(session=session, settings=settings, timeout_s=timeout_s,
                              max_body_bytes=max_body_bytes)
            return await channel.send(out, ctx)

    return asyncio.run(run())


def no_secret(result: SendResult, *secrets: str) -> None:
    assert result.error is None or len(result.error) <= 300
    for secret in secrets:
        assert secret not in (result.error or "")


def closed_port() -> int:
    """A port nothing listens on (a server started and stopped)."""
    with FakeHttpServer() as server:
        port = server.port
    return port


# Telegram ---------------------------------------------------------------------------


@pytest.fixture
def telegram() -> Iterator[FakeHttpServer]:
    with fake_telegram() as server:
        yield server


def telegram_settings(server: FakeHttpServer) -> Settings:
    return Settings(telegram_base_url=server.url)


def test_telegram_sends_the_html_message_to_every_chat(telegram: FakeHttpServer) -> None:
    channel = TelegramChannel.from_url(f"tgram://{TOKEN}/123456789/-1001234567890")
    result = send(channel, outgoing(), telegram_settings(telegram))
    assert result.ok
    assert result.status == 200
    assert [r.path for r in telegram.requests] == [f"/bot{TOKEN}/sendMessage"] * 2
    first, second = (r.json for r in telegram.requests)
    assert first == {"chat_id": "123456789", "text": MESSAGES["telegram"],
                     "parse_mode": "HTML", "disable_web_page_preview": True}
    assert second["chat_id"] == "-1001234567890"


def test_telegram_sends_the_pdf_as_a_document(telegram: FakeHttpServer) -> None:
    channel = TelegramChannel.from_url(f"tgram://bot{TOKEN}/@metricstream")
    result = send(channel, outgoing(pdf=PDF, pdf_name="trace.pdf"), telegram_settings(telegram))
    assert result.ok
    message, document = telegram.requests
    assert message.json["chat_id"] == "@metricstream"
    assert document.path == f"/bot{TOKEN}/sendDocument"
    assert document.headers["content-type"].startswith("multipart/form-data")
    parts = document.parts
    assert parts["chat_id"].data == b"@metricstream"
    assert parts["caption"].data.decode() == MESSAGES["email"]["subject"]
    assert parts["document"].filename == "trace.pdf"
    assert parts["document"].content_type == "application/pdf"
    assert parts["document"].data == PDF


def test_telegram_test_send_is_a_short_message_without_the_report(
        telegram: FakeHttpServer) -> None:
    channel = TelegramChannel.from_url(f"tgram://{TOKEN}/123456789")
    out = Outgoing(trace_id="test", endpoint_id="ops-chat", messages={}, test=True, pdf=PDF)
    assert send(channel, out, telegram_settings(telegram)).ok
    (request,) = telegram.requests
    assert "metric-stream test message" in request.json["text"]
    assert "<code>ops-chat</code>" in request.json["text"]
    assert request.json["parse_mode"] == "HTML"


def test_telegram_rate_limit_is_retryable_after_its_wait(telegram: FakeHttpServer) -> None:
    telegram.script(telegram_error(429, "Too Many Requests: retry after 7", retry_after=7))
    channel = TelegramChannel.from_url(f"tgram://{TOKEN}/1/2")
    result = send(channel, outgoing(), telegram_settings(telegram))
    assert not result.ok
    assert result.retryable
    assert result.retry_after == 7
    assert result.status == 429
    assert len(telegram.requests) == 1  # the limit stops the round: the retry sends again
    no_secret(result, TOKEN, TOKEN_SECRET)


@pytest.mark.parametrize(("reply", "gone"), [
    (telegram_error(403, "Forbidden: bot was blocked by the user"), True),
    (telegram_error(400, "Bad Request: chat not found"), True),
    (telegram_error(403, "Forbidden: bot was kicked from the group chat"), True),
    (telegram_error(400, "Bad Request: not enough rights to send documents"), False),
    (telegram_error(401, "Unauthorized"), False),
    (telegram_error(404, "Not Found"), False),
])
def test_telegram_final_answers(telegram: FakeHttpServer, reply: Reply, gone: bool) -> None:
    telegram.script(reply)
    channel = TelegramChannel.from_url(f"tgram://{TOKEN}/123456789")
    result = send(channel, outgoing(), telegram_settings(telegram))
    assert not result.ok
    assert not result.retryable
    assert result.gone is gone
    assert result.error is not None
    assert result.error.startswith(f"Telegram {reply.status}: ")
    assert reply.body["description"] in result.error
    no_secret(result, TOKEN, TOKEN_SECRET)


def test_telegram_names_the_new_chat_of_a_migrated_group(telegram: FakeHttpServer) -> None:
    telegram.script(telegram_error(400, "Bad Request: group chat was upgraded to a "
                                   "supergroup chat", migrate_to=-1009876543210))
    result = send(TelegramChannel.from_url(f"tgram://{TOKEN}/-123456"), outgoing(),
                  telegram_settings(telegram))
    assert not result.ok
    assert not result.gone
    assert "-1009876543210" in (result.error or "")


def test_telegram_one_blocked_chat_fails_the_send_but_is_not_gone(
        telegram: FakeHttpServer) -> None:
    telegram.script(telegram_error(403, "Forbidden: bot was blocked by the user"))
    channel = TelegramChannel.from_url(f"tgram://{TOKEN}/111/222")
    result = send(channel, outgoing(), telegram_settings(telegram))
    assert len(telegram.requests) == 2  # a final failure does not stop the other chats
    assert not result.ok
    assert not result.gone
    assert (result.error or "").startswith("111: Telegram 403")

    telegram.script(*[telegram_error(403, "Forbidden: bot was blocked by the user")] * 2)
    assert send(channel, outgoing(), telegram_settings(telegram)).gone


def test_telegram_server_errors_are_retryable(telegram: FakeHttpServer) -> None:
    telegram.script(Reply(502, "<html>Bad Gateway</html>"))
    result = send(TelegramChannel.from_url(f"tgram://{TOKEN}/1"), outgoing(),
                  telegram_settings(telegram))
    assert result.retryable
    assert result.status == 502
    assert result.retry_after is None


def test_telegram_timeout_is_retryable(telegram: FakeHttpServer) -> None:
    telegram.script(Reply(200, {"ok": True}, delay=3.0))
    started = time.monotonic()
    result = send(TelegramChannel.from_url(f"tgram://{TOKEN}/1"), outgoing(),
                  telegram_settings(telegram), timeout_s=0.2)
    assert time.monotonic() - started < 2
    assert not result.ok
    assert result.retryable
    assert "timed out" in (result.error or "")
    no_secret(result, TOKEN, TOKEN_SECRET)


def test_a_huge_answer_is_cut_not_loaded(telegram: FakeHttpServer) -> None:
    huge = 256 * 1024 * 1024
    telegram.script(Reply(500, b"<html>" + b"x" * 1000, filler=huge))
    started = time.monotonic()
    result = send(TelegramChannel.from_url(f"tgram://{TOKEN}/1"), outgoing(),
                  telegram_settings(telegram), max_body_bytes=16 * 1024)
    assert time.monotonic() - started < 5
    assert result.retryable
    assert len(result.error or "") <= 300
    assert telegram.streamed < huge // 4  # the client hung up long before the end


def test_a_connection_failure_is_retryable_and_names_no_token() -> None:
    settings = Settings(telegram_base_url=f"http://127.0.0.1:{closed_port()}")
    result = send(TelegramChannel.from_url(f"tgram://{TOKEN}/1"), outgoing(), settings)
    assert not result.ok
    assert result.retryable
    assert result.status is None
    no_secret(result, TOKEN, TOKEN_SECRET)


def test_a_refused_address_is_final(telegram: FakeHttpServer) -> None:
    settings = Settings(backend="aws", telegram_base_url=f"http://localhost:{telegram.port}")
    result = send(TelegramChannel.from_url(f"tgram://{TOKEN}/1"), outgoing(), settings,
                  safe=True)
    assert not result.ok
    assert not result.retryable
    assert "refused" in (result.error or "")
    assert telegram.requests == []
    no_secret(result, TOKEN, TOKEN_SECRET)


# Discord ----------------------------------------------------------------------------


@pytest.fixture
def discord() -> Iterator[FakeHttpServer]:
    with fake_discord() as server:
        yield server


@pytest.mark.parametrize("url", [
    f"discord://1234567890123456789/{DISCORD_TOKEN}",
    f"https://discord.com/api/webhooks/1234567890123456789/{DISCORD_TOKEN}",
    f"https://discordapp.com/api/webhooks/1234567890123456789/{DISCORD_TOKEN}",
])
def test_discord_posts_the_embed_to_the_webhook(discord: FakeHttpServer, url: str) -> None:
    channel = parse_channel(url)
    assert isinstance(channel, DiscordChannel)
    result = send(channel, outgoing(), Settings(discord_base_url=discord.url))
    assert result.ok
    (request,) = discord.requests
    assert request.path == f"/api/webhooks/1234567890123456789/{DISCORD_TOKEN}"
    assert request.query == {"wait": "true"}
    assert request.json == MESSAGES["discord"]


def test_discord_botname_and_thread(discord: FakeHttpServer) -> None:
    channel = DiscordChannel.from_url(
        f"discord://Reports@1234567890123456789/{DISCORD_TOKEN}?thread_id=987654321")
    assert send(channel, outgoing(), Settings(discord_base_url=discord.url)).ok
    (request,) = discord.requests
    assert request.query == {"wait": "true", "thread_id": "987654321"}
    assert request.json["username"] == "Reports"


def test_discord_attaches_the_pdf(discord: FakeHttpServer) -> None:
    channel = DiscordChannel.from_url(f"discord://1234567890123456789/{DISCORD_TOKEN}")
    result = send(channel, outgoing(pdf=PDF, pdf_name="trace.pdf"),
                  Settings(discord_base_url=discord.url))
    assert result.ok
    parts = discord.requests[0].parts
    payload = json.loads(parts["payload_json"].data)
    assert payload["embeds"] == MESSAGES["discord"]["embeds"]
    assert payload["attachments"] == [{"id": 0, "filename": "trace.pdf"}]
    assert parts["files[0]"].filename == "trace.pdf"
    assert parts["files[0]"].content_type == "application/pdf"
    assert parts["files[0]"].data == PDF


def test_discord_test_send(discord: FakeHttpServer) -> None:
    channel = DiscordChannel.from_url(f"discord://1234567890123456789/{DISCORD_TOKEN}")
    out = Outgoing(trace_id="test", endpoint_id="ops", messages={}, test=True)
    assert send(channel, out, Settings(discord_base_url=discord.url)).ok
    body = discord.requests[0].json
    assert body["content"] == "metric-stream test message for endpoint `ops` — delivery works"
    assert body["allowed_mentions"] == {"parse": []}


@pytest.mark.parametrize(("reply", "retryable", "retry_after", "gone"), [
    (discord_error(429, "You are being rate limited.", retry_after=0.75), True, 0.75, False),
    (Reply(429, "rate limited", {"Retry-After": "4"}), True, 4.0, False),
    (discord_error(404, "Unknown Webhook", 10015), False, None, True),
    (discord_error(401, "Invalid Webhook Token", 50027), False, None, False),
    (discord_error(400, "Cannot send an empty message", 50006), False, None, False),
    (discord_error(503, "upstream connect error"), True, None, False),
])
def test_discord_answers(discord: FakeHttpServer, reply: Reply, retryable: bool,
                         retry_after: float | None, gone: bool) -> None:
    discord.script(reply)
    channel = DiscordChannel.from_url(f"discord://1234567890123456789/{DISCORD_TOKEN}")
    result = send(channel, outgoing(), Settings(discord_base_url=discord.url))
    assert not result.ok
    assert (result.retryable, result.retry_after, result.gone) == (retryable, retry_after, gone)
    assert (result.error or "").startswith(f"Discord {reply.status}")
    no_secret(result, DISCORD_TOKEN)


def test_a_redirect_is_not_followed(discord: FakeHttpServer) -> None:
    discord.script(Reply(302, b"", {"Location": "http://169.254.169.254/latest/"}))
    channel = DiscordChannel.from_url(f"discord://1234567890123456789/{DISCORD_TOKEN}")
    result = send(channel, outgoing(), Settings(discord_base_url=discord.url))
    assert not result.ok
    assert not result.retryable
    assert "redirect" in (result.error or "")
    assert len(discord.requests) == 1


# Slack ------------------------------------------------------------------------------


@pytest.fixture
def slack() -> Iterator[FakeHttpServer]:
    with fake_slack() as server:
        yield server


@pytest.mark.parametrize("url", [
    f"slack://T01ABCDEF/B02GHIJKL/{SLACK_SECRET}",
    f"https://hooks.slack.com/services/T01ABCDEF/B02GHIJKL/{SLACK_SECRET}",
])
def test_slack_posts_block_kit_to_the_webhook(slack: FakeHttpServer, url: str) -> None:
    channel = parse_channel(url)
    assert isinstance(channel, SlackChannel)
    result = send(channel, outgoing(pdf=PDF), Settings(slack_base_url=slack.url))
    assert result.ok
    (request,) = slack.requests
    assert request.path == f"/services/T01ABCDEF/B02GHIJKL/{SLACK_SECRET}"
    assert request.json == MESSAGES["slack"]  # webhooks take no files: the link only


def test_slack_test_send(slack: FakeHttpServer) -> None:
    channel = SlackChannel.from_url(f"slack://Bot@T01ABCDEF/B02GHIJKL/{SLACK_SECRET}")
    out = Outgoing(trace_id="test", endpoint_id="ops", messages={}, test=True)
    assert send(channel, out, Settings(slack_base_url=slack.url)).ok
    assert slack.requests[0].json == {
        "text": "metric-stream test message for endpoint `ops` — delivery works",
        "username": "Bot"}


@pytest.mark.parametrize(("reply", "retryable", "retry_after", "gone"), [
    (slack_error(404, "no_service"), False, None, True),
    (slack_error(404, "channel_not_found"), False, None, True),
    (slack_error(410, "channel_is_archived"), False, None, True),
    (slack_error(429, "rate_limited", retry_after=30), True, 30.0, False),
    (slack_error(400, "invalid_payload"), False, None, False),
    (slack_error(403, "action_prohibited"), False, None, False),
    (slack_error(500, "rollup_error"), True, None, False),
])
def test_slack_answers(slack: FakeHttpServer, reply: Reply, retryable: bool,
                       retry_after: float | None, gone: bool) -> None:
    slack.script(reply)
    channel = SlackChannel.from_url(f"slack://T01ABCDEF/B02GHIJKL/{SLACK_SECRET}")
    result = send(channel, outgoing(), Settings(slack_base_url=slack.url))
    assert not result.ok
    assert (result.retryable, result.retry_after, result.gone) == (retryable, retry_after, gone)
    assert result.error == f"Slack {reply.status}: {reply.body}"
    no_secret(result, SLACK_SECRET)


# Twilio -----------------------------------------------------------------------------


@pytest.fixture
def twilio() -> Iterator[FakeHttpServer]:
    with fake_twilio() as server:
        yield server


def twilio_url(recipients: str = "+15557654321") -> str:
    return f"twilio://{TWILIO_SID}:{TWILIO_TOKEN}@+15551234567/{recipients}"


def test_twilio_sends_the_sms_to_each_number(twilio: FakeHttpServer) -> None:
    channel = parse_channel(twilio_url("+15557654321/44 20 7946 0958"))
    assert isinstance(channel, TwilioChannel)
    result = send(channel, outgoing(), Settings(twilio_base_url=twilio.url))
    assert result.ok
    assert result.status == 201
    assert [r.path for r in twilio.requests] == [
        f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"] * 2
    first, second = twilio.requests
    assert first.form == {"To": "+15557654321", "From": "+15551234567",
                          "Body": MESSAGES["sms"]}
    assert second.form["To"] == "+442079460958"
    assert first.basic_auth == (TWILIO_SID, TWILIO_TOKEN)


def test_twilio_messaging_service_and_test_send(twilio: FakeHttpServer) -> None:
    service = "MG" + "ab" * 16
    channel = TwilioChannel.from_url(f"twilio://{TWILIO_SID}:{TWILIO_TOKEN}@{service}/15557654321")
    out = Outgoing(trace_id="test", endpoint_id="ops", messages={}, test=True)
    assert send(channel, out, Settings(twilio_base_url=twilio.url)).ok
    form = twilio.requests[0].form
    assert form == {"To": "+15557654321", "MessagingServiceSid": service,
                    "Body": "metric-stream test message for endpoint ops - delivery works"}


@pytest.mark.parametrize(("reply", "retryable", "gone"), [
    (twilio_error(429, 20429, "Too Many Requests"), True, False),
    (twilio_error(400, 21211, "The 'To' number +15557654321 is not a valid phone number."),
     False, False),
    (twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"), False, True),
    (twilio_error(401, 20003, "Authenticate"), False, False),
    (twilio_error(500, 20500, "Internal Server Error"), True, False),
])
def test_twilio_answers(twilio: FakeHttpServer, reply: Reply, retryable: bool,
                        gone: bool) -> None:
    twilio.script(reply)
    result = send(TwilioChannel.from_url(twilio_url()), outgoing(),
                  Settings(twilio_base_url=twilio.url))
    assert not result.ok
    assert (result.retryable, result.gone) == (retryable, gone)
    assert (result.error or "").startswith(
        f"Twilio {reply.status}: error {reply.body['code']}: {reply.body['message']}")
    no_secret(result, TWILIO_TOKEN)


def test_twilio_timeout_and_unreachable_are_retryable(twilio: FakeHttpServer) -> None:
    twilio.script(Reply(201, {}, delay=3.0))
    channel = TwilioChannel.from_url(twilio_url())
    result = send(channel, outgoing(), Settings(twilio_base_url=twilio.url), timeout_s=0.2)
    assert result.retryable
    unreachable = Settings(twilio_base_url=f"http://127.0.0.1:{closed_port()}")
    result = send(channel, outgoing(), unreachable)
    assert result.retryable
    no_secret(result, TWILIO_TOKEN)


# SMTP -------------------------------------------------------------------------------


def smtp_url(server: FakeSmtpServer, query: str = "", user: str = "") -> str:
    return (f"mailto://{user}{server.host}:{server.port}/?from=reports@example.com"
            f"&to=ops@example.com,cto@example.com&starttls=no{query}")


def parts_of(message: EmailMessage) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for part in message.walk():
        if part.is_multipart():
            continue
        if part.get_filename():
            found["attachment"] = (part.get_filename(), part.get_content_type(),
                                   part.get_payload(decode=True))
        else:
            found[part.get_content_type()] = part.get_content()
    return found


def test_smtp_sends_text_and_html_alternatives() -> None:
    with FakeSmtpServer() as server:
        url = smtp_url(server, "&name=Metric Stream&bcc=audit@example.com")
        channel = SmtpChannel.from_url(url)
        result = send(channel, outgoing(), Settings())
    assert result.ok
    (mail,) = server.mails
    assert mail.mail_from == "reports@example.com"
    assert mail.rcpt_tos == ("ops@example.com", "cto@example.com", "audit@example.com")
    message = mail.message
    assert message["Subject"] == MESSAGES["email"]["subject"]
    assert message["From"] == "Metric Stream <reports@example.com>"
    assert message["To"] == "ops@example.com, cto@example.com"
    assert message["Bcc"] is None
    assert message["X-Metric-Stream-Id"] == f"{SUMMARY.trace_id}:ops-chat"
    assert message["Message-ID"] == f"<{SUMMARY.trace_id}.ops-chat@example.com>"
    assert message.get_content_type() == "multipart/alternative"
    parts = parts_of(message)
    assert parts["text/plain"].replace("\r\n", "\n") == MESSAGES["email"]["text"]
    assert parts["text/html"].replace("\r\n", "\n") == MESSAGES["email"]["html"]
    assert "attachment" not in parts


def test_smtp_attaches_the_pdf_and_logs_in() -> None:
    with FakeSmtpServer(credentials=("reports", PASSWORD)) as server:
        channel = SmtpChannel.from_url(smtp_url(server, user=f"reports:{PASSWORD}@"))
        result = send(channel, outgoing(pdf=PDF, pdf_name="trace.pdf"), Settings())
    assert result.ok
    assert server.logins == [("reports", PASSWORD)]
    message = server.mails[0].message
    assert message.get_content_type() == "multipart/mixed"
    parts = parts_of(message)
    assert parts["attachment"] == ("trace.pdf", "application/pdf", PDF)
    assert "text/plain" in parts
    assert "text/html" in parts


def test_smtp_test_send_has_a_fresh_message_id() -> None:
    with FakeSmtpServer() as server:
        channel = SmtpChannel.from_url(smtp_url(server))
        out = Outgoing(trace_id="test", endpoint_id="ops", messages={}, test=True, pdf=PDF)
        assert send(channel, out, Settings()).ok
        assert send(channel, out, Settings()).ok
    first, second = (mail.message for mail in server.mails)
    assert first["Subject"] == "metric-stream test message"
    assert first["Message-ID"] != second["Message-ID"]
    assert "delivery works" in parts_of(first)["text/plain"]
    assert "attachment" not in parts_of(first)


def test_smtp_wrong_password_is_final_and_secret() -> None:
    with FakeSmtpServer(credentials=("reports", "another")) as server:
        channel = SmtpChannel.from_url(smtp_url(server, user=f"reports:{PASSWORD}@"))
        result = send(channel, outgoing(), Settings())
    assert not result.ok
    assert not result.retryable
    assert result.status == 535
    assert server.mails == []
    no_secret(result, PASSWORD)


@pytest.mark.parametrize(("reply", "status", "retryable"), [
    ("451 4.3.0 Try again later", 451, True),
    ("552 5.3.4 Message too big", 552, False),
])
def test_smtp_data_answers(reply: str, status: int, retryable: bool) -> None:
    with FakeSmtpServer() as server:
        server.data_reply = reply
        result = send(SmtpChannel.from_url(smtp_url(server)), outgoing(), Settings())
    assert not result.ok
    assert (result.status, result.retryable, result.gone) == (status, retryable, False)
    assert result.error == f"SMTP {status}: {reply[4:]}"


def test_smtp_refused_recipient() -> None:
    with FakeSmtpServer() as server:
        server.rcpt_replies["cto@example.com"] = "550 5.1.1 No such user"
        result = send(SmtpChannel.from_url(smtp_url(server)), outgoing(), Settings())
        assert len(server.mails) == 1  # the other recipient has it
    assert not result.ok
    assert not result.retryable
    assert not result.gone
    assert result.error == "SMTP 550: recipient cto@example.com refused: 5.1.1 No such user"


def test_smtp_requires_starttls_by_default() -> None:
    with FakeSmtpServer() as server:
        url = smtp_url(server).replace("&starttls=no", "")
        result = send(SmtpChannel.from_url(url), outgoing(), Settings())
    assert not result.ok
    assert not result.retryable
    assert "does not offer STARTTLS" in (result.error or "")
    assert server.mails == []


def test_smtp_clear_text_only_to_loopback() -> None:
    with pytest.raises(InvalidInput, match="loopback") as caught:
        SmtpChannel.from_url(f"mailto://me:{PASSWORD}@smtp.example.com/?to=a@example.com"
                             "&starttls=no")
    assert PASSWORD not in str(caught.value)


def test_smtp_unreachable_is_retryable_and_refused_address_final() -> None:
    port = closed_port()
    channel = SmtpChannel.from_url(f"mailto://me:{PASSWORD}@127.0.0.1:{port}/"
                                   "?from=me@example.com&starttls=no")
    result = send(channel, outgoing(), Settings())
    assert result.retryable
    no_secret(result, PASSWORD)
    refused = send(channel, outgoing(), Settings(backend="aws"))
    assert not refused.retryable
    assert "loopback" in (refused.error or "")
    with pytest.raises(Forbidden, match="loopback"):
        channel.check(Settings(backend="aws"))
    channel.check(Settings())


def test_smtp_timeout_is_retryable() -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never greets
        port = silent.getsockname()[1]
        channel = SmtpChannel.from_url(f"mailto://127.0.0.1:{port}/?from=me@example.com"
                                       "&starttls=no")
        started = time.monotonic()
        result = send(channel, outgoing(), Settings(smtp_timeout_s=0.3))
    assert time.monotonic() - started < 3
    assert result.retryable
    assert "within 0.3 s" in (result.error or "")


# SES and SNS (moto) -----------------------------------------------------------------


@pytest.fixture
def aws() -> Iterator[None]:
    from moto import mock_aws

    with mock_aws():
        yield


def test_ses_sends_the_raw_mime_message(aws: None) -> None:
    import boto3
    from moto.ses.models import ses_backends

    boto3.client("ses", region_name="eu-west-1").verify_email_identity(
        EmailAddress="reports@example.com")
    channel = parse_channel("ses://reports@example.com/eu-west-1/ops@example.com"
                            "?cc=cto@example.com&bcc=audit@example.com&name=Metric Stream")
    assert isinstance(channel, SesChannel)
    assert channel.host == "email.eu-west-1.amazonaws.com"
    result = send(channel, outgoing(pdf=PDF), Settings())
    assert result.ok, result.error
    (sent,) = ses_backends[MOTO_ACCOUNT]["eu-west-1"].sent_messages
    assert sent.source == "reports@example.com"
    assert {"ops@example.com", "cto@example.com", "audit@example.com"} <= set(sent.destinations)
    from email import message_from_string
    from email.policy import default

    message = message_from_string(sent.raw_data, policy=default)
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == MESSAGES["email"]["subject"]
    assert message["Cc"] == "cto@example.com"
    assert message["Bcc"] is None
    assert message["X-Metric-Stream-Id"] == f"{SUMMARY.trace_id}:ops-chat"
    parts = parts_of(message)
    assert parts["attachment"] == ("report.pdf", "application/pdf", PDF)
    assert {"text/plain", "text/html"} <= set(parts)


def test_ses_unverified_sender_is_final(aws: None) -> None:
    channel = SesChannel.from_url("ses://nobody@example.com/us-east-1/?to=ops@example.com")
    result = send(channel, outgoing(), Settings())
    assert not result.ok
    assert not result.retryable
    assert (result.error or "").startswith("SES MessageRejected")


def test_sns_publishes_to_numbers_and_topics(aws: None) -> None:
    import boto3
    from moto.sns.models import sns_backends

    topic = boto3.client("sns", region_name="us-east-1").create_topic(Name="ops")["TopicArn"]
    channel = parse_channel(f"sns://us-east-1/+15551234567/1-555-765-4321/{topic}")
    assert isinstance(channel, SnsChannel)
    assert channel.host == "sns.us-east-1.amazonaws.com"
    result = send(channel, outgoing(), Settings())
    assert result.ok, result.error
    backend = sns_backends[MOTO_ACCOUNT]["us-east-1"]
    assert sorted(backend.sms_messages.values()) == [("+15551234567", MESSAGES["sms"]),
                                                     ("+15557654321", MESSAGES["sms"])]
    assert [n[1] for n in backend.topics[topic].sent_notifications] == [MESSAGES["sms"]]


def test_sns_deleted_topic_is_gone(aws: None) -> None:
    channel = SnsChannel.from_url("sns://us-east-1/arn:aws:sns:us-east-1:123456789012:deleted")
    result = send(channel, outgoing(), Settings())
    assert not result.ok
    assert result.gone
    assert (result.error or "").startswith("SNS NotFound")


# URLs -------------------------------------------------------------------------------


def test_urls_map_to_their_channels_and_hosts() -> None:
    cases = {
        f"tgram://{TOKEN}/123?to=@news,-100123": (TelegramChannel, "api.telegram.org"),
        f"discord://1/{DISCORD_TOKEN}": (DiscordChannel, "discord.com"),
        f"slack://T1/B2/{SLACK_SECRET}": (SlackChannel, "hooks.slack.com"),
        f"mailto://me:{PASSWORD}@smtp.example.com/?to=a@example.com": (SmtpChannel,
                                                                       "smtp.example.com"),
        f"mailto://me:{PASSWORD}@gmail.com": (SmtpChannel, "smtp.gmail.com"),
        "ses://me@example.com/us-east-1/a@example.com": (SesChannel,
                                                         "email.us-east-1.amazonaws.com"),
        "sns://eu-west-1/+15551234567": (SnsChannel, "sns.eu-west-1.amazonaws.com"),
        twilio_url(): (TwilioChannel, "api.twilio.com"),
    }
    for url, (kind, host) in cases.items():
        channel = parse_channel(url)
        assert isinstance(channel, kind), url
        assert channel.host == host
        for secret in (TOKEN, DISCORD_TOKEN, SLACK_SECRET, PASSWORD, TWILIO_TOKEN):
            assert secret not in repr(channel)
    telegram = parse_channel(f"tgram://{TOKEN}/123?to=@news,-100123")
    assert isinstance(telegram, TelegramChannel)
    assert telegram.chat_ids == ("123", "@news", "-100123")


def test_email_url_forms() -> None:
    short = SmtpChannel.from_url(f"mailto://me:{PASSWORD}@gmail.com")
    assert (short.server, short.port, short.security) == ("smtp.gmail.com", 587, "starttls")
    assert (short.sender, short.to, short.user) == ("me@gmail.com", ("me@gmail.com",), "me")
    tls = SmtpChannel.from_url("mailtos://me%40example.com:pw@mail.example.com/a@example.com"
                               "?from=Reports <reports@example.com>&to=b+tag@example.com")
    assert (tls.server, tls.port, tls.security) == ("mail.example.com", 465, "tls")
    assert (tls.user, tls.sender, tls.sender_name) == ("me@example.com", "reports@example.com",
                                                       "Reports")
    assert tls.to == ("a@example.com", "b+tag@example.com")
    relay = SmtpChannel.from_url("mailto://example.com:2525?smtp=relay.internal"
                                 "&from=me@example.com&mode=starttls")
    assert (relay.server, relay.port, relay.user, relay.to) == (
        "relay.internal", 2525, None, ("me@example.com",))


@pytest.mark.parametrize(("url", "message"), [
    (f"tgram://{TOKEN}", "names no Telegram chat"),
    (f"tgram://{TOKEN_SECRET}/123", "bot token is missing or malformed"),
    (f"tgram://{TOKEN}/not-a-chat", "'not-a-chat' is not a Telegram chat id"),
    (f"tgram://{TOKEN}/{TOKEN_SECRET}", "a value of 34 characters is not a Telegram chat id"),
    ("discord://1234567890", "webhook token is missing"),
    (f"discord://hooks/{DISCORD_TOKEN}", "webhook id is missing or not a number"),
    (f"https://discord.com/api/webhooks/123/{DISCORD_TOKEN}/github", "has more after"),
    (f"discord://1/{DISCORD_TOKEN}?thread_id=abc", "thread_id must be a number"),
    (f"slack://T1/{SLACK_SECRET}", "needs the webhook's three tokens"),
    (f"slack://xoxb-1234-{SLACK_SECRET}/#general", "OAuth (bot or user) tokens"),
    (f"slack://T1/B2/{SLACK_SECRET}/#general", "remove the channel"),
    (f"mailto://me:{PASSWORD}@smtp.example.com:99999/?to=a@example.com", "invalid port"),
    ("mailto://smtp.example.com/?to=a@example.com", "names no sender"),
    (f"mailto://me:{PASSWORD}@smtp.example.com/?to=not-an-address",
     "recipient 'not-an-address' is not an email address"),
    ("mailto://me@smtp.example.com/?to=a@example.com", "a user without a password"),
    (f"mailtos://me:{PASSWORD}@smtp.example.com/?starttls=no", "contradicts mailtos"),
    (f"mailto://me:{PASSWORD}@smtp.example.com/?mode=weird", "mode must be"),
    (f"mailto://me:{PASSWORD}@bad_host!/?to=a@example.com", "is not a host name"),
    ("ses://reports@example.com", "names no AWS region"),
    ("ses://reports@example.com/useast1/?to=a@example.com", "'useast1' is not an AWS region"),
    (f"ses://reports@example.com/AKIAIOSFODNN7EXAMPLE/{PASSWORD}/us-east-1/a@example.com",
     "AWS credentials are not part of the URL"),
    ("ses://reports@example.com/us-east-1", "names no recipient"),
    ("ses://not-an-address/us-east-1/?to=a@example.com", "is not an email address"),
    ("sns://us-east-1", "names no phone number or topic"),
    ("sns://us-east-1/555-1234", "'555-1234' is not a phone number in E.164 form"),
    ("sns://moon-1/+15551234567", "'moon-1' is not an AWS region"),
    (f"sns://AKIAIOSFODNN7EXAMPLE:{PASSWORD}@us-east-1/+15551234567",
     "AWS credentials are not part of the URL"),
    ("sns://us-east-1/arn:aws:sns:eu-west-1:123456789012:ops", "the topic is in eu-west-1"),
    ("sns://us-east-1/arn:aws:sns:us-east-1:12:ops", "topic ARN must read"),
    ("sns://us-east-1/#ops", "by its ARN"),
    (f"twilio://{TWILIO_SID}:{TWILIO_TOKEN}@+15551234567", "names no phone number to send"),
    (f"twilio://AC123:{TWILIO_TOKEN}@+15551234567/+15557654321", "Account SID must be"),
    (f"twilio://{TWILIO_SID}@+15551234567/+15557654321", "auth token is missing"),
    (f"twilio://{TWILIO_SID}:{TWILIO_TOKEN}@+15551234567/5551234",
     "'5551234' is not a phone number"),
    (f"twilio://{TWILIO_SID}:{TWILIO_TOKEN}@/+15557654321", "names no sender"),
])
def test_invalid_urls_say_what_is_wrong_without_secrets(url: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_channel(url)
    error = caught.value
    assert message in error.message
    assert error.field == "url"
    for secret in (TOKEN_SECRET, DISCORD_TOKEN, SLACK_SECRET, PASSWORD, TWILIO_TOKEN):
        assert secret not in error.message
