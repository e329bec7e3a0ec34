"""`metric-stream run --demo` with an endpoint of every native kind, each pointed at a
local server speaking that service's API (SMTP, Telegram, Discord, Slack, Twilio, a
webhook sink; SES and SNS under a moto server): each receives exactly one message."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from metric_stream.bootstrap import build_services
from metric_stream.models.delivery import DeliveryEndpoint
from metric_stream.services import admin
from metric_stream.settings import Settings
from tests.delivery_fakes import (
    FakeHttpServer,
    FakeSmtpServer,
    fake_discord,
    fake_slack,
    fake_telegram,
    fake_twilio,
)

BOT = "123456789:AAH-demo_token"
REGION = "us-east-1"


@pytest.fixture
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_a_demo_run_delivers_once_to_every_kind(tmp_path: Path, moto_url: str) -> None:
    ses = boto3.client("ses", region_name=REGION, endpoint_url=moto_url)
    ses.verify_email_identity(EmailAddress="reports@example.com")
    with (FakeHttpServer() as sink, fake_telegram() as telegram, fake_discord() as discord,
          fake_slack() as slack, fake_twilio() as twilio,
          FakeSmtpServer(("user", "secret")) as smtp):
        env = {**os.environ, "METRIC_STREAM_HOME": str(tmp_path),
               "METRIC_STREAM_TELEGRAM_BASE_URL": telegram.url,
               "METRIC_STREAM_DISCORD_BASE_URL": discord.url,
               "METRIC_STREAM_SLACK_BASE_URL": slack.url,
               "METRIC_STREAM_TWILIO_BASE_URL": twilio.url,
               "METRIC_STREAM_AWS_ENDPOINT_URL": moto_url,
               "METRIC_STREAM_AWS_REGION": REGION}
        settings = Settings(home=tmp_path / "demo", telegram_base_url=telegram.url,
                            aws_endpoint_url=moto_url, aws_region=REGION)
        services = build_services(settings)
        services.init()
        endpoints = {
            "webhook": f"{sink.url}/hook",
            "telegram": f"tgram://{BOT}/-1001234567890",
            "discord": "discord://112233445566/discord-token_abc",
            "slack": "slack://T000A/B000B/XXXXXXXXXXXXXXXXXXXXXXXX",
            "email": (f"mailto://user:secret@{smtp.host}:{smtp.port}/"
                      "?to=ops@example.com&from=reports@example.com&starttls=no"),
            "ses": f"ses://reports@example.com/{REGION}?to=ops@example.com",
            "sns": f"sns://{REGION}/+15551234567",
            "twilio": "twilio://AC0123456789abcdef0123456789abcdef:twiliotoken0123456789abcdef012345@+15550001111/"
                      "+15552223333",
        }
        for name, url in endpoints.items():
            admin.create_endpoint(services, DeliveryEndpoint(id=name, name=name, url=url))

        run = subprocess.run([sys.executable, "-m", "metric_stream.cli.main", "run", "--demo"],
                             env=env, capture_output=True, text=True, timeout=120,
                             cwd=tmp_path)
        assert run.returncode == 0, run.stdout + run.stderr
        trace_id = services.jobs.list(limit=1)[0].trace_id
        records = {r.endpoint_id: r for r in services.deliveries.list(trace_id)}
        failed = {k: r.last_error for k, r in records.items() if r.status.value != "sent"}
        assert not failed
        assert "deliveries: 8 sent, 0 failed" in run.stdout

        assert [r.path for r in sink.requests] == ["/hook"]
        assert sink.requests[0].headers["webhook-id"].endswith(":webhook")
        assert [r.path for r in telegram.requests] == [f"/bot{BOT}/sendMessage"]
        assert len(discord.requests) == 1 and discord.requests[0].json["embeds"]
        assert len(slack.requests) == 1 and slack.requests[0].json["blocks"]
        assert len(twilio.requests) == 1
        assert twilio.requests[0].form["To"] == "+15552223333"
        assert len(smtp.mails) == 1 and smtp.mails[0].rcpt_tos == ("ops@example.com",)
        assert "DEMO" in str(smtp.mails[0].message["Subject"])

    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends
    from moto.sns.models import sns_backends

    mails = ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages
    assert len(mails) == 1 and "ops@example.com" in mails[0].destinations
    texts = sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages
    assert len(texts) == 1
    assert {k: r.status.value for k, r in records.items()} == dict.fromkeys(endpoints, "sent")
    assert "secret" not in run.stdout and "twiliotoken0123456789" not in run.stdout
