"""The channel messages of a report (SPEC step 5): each channel's limits at the
extremes, escaping of hostile KPI names, and the wording every message owes its reader
(DEMO, partial data, AI-generated, LLM off)."""

from __future__ import annotations

import html
import json
import math
import re
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metric_stream.report.messages import (
    AI_LABEL,
    DEMO_NOTE,
    GSM7_BASIC,
    build_messages,
    format_discord,
    format_email,
    format_percent,
    format_signed,
    format_slack,
    format_sms,
    format_telegram,
    format_value,
    format_webhook,
    utf16_len,
)
from metric_stream.report.summary import (
    AlertLine,
    MissingLine,
    MoverLine,
    ReportSummary,
    build_summary,
    summary_to_wire,
)

CREATED = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
URL = "https://reports.example.com/api/documents/trace_20261129_060000_3fa9c1?sig=a%2Fb&exp=1"
LLM_OFF = "LLM analysis was off"


def make_summary(**changes: Any) -> ReportSummary:
    base = ReportSummary(
        trace_id="trace_20261129_060000_3fa9c1",
        created_at=CREATED,
        status="complete",
        demo=False,
        kpi_count=3,
        alerts=(AlertLine("fng", "Fear & Greed", "high", 82.0, 75.0, "index"),),
        movers=(MoverLine("btc", "Bitcoin price", 3.456, 2250.0, 67234.5, "USD"),
                MoverLine("dom", "BTC dominance", -1.04, -0.6, 57.1, "%")),
        headline="Risk appetite rose: bitcoin led the day.",
        llm_status="ok",
        report_url=URL,
    )
    return replace(base, **changes)


def huge_summary(name: str = "N" * 500) -> ReportSummary:
    """Every list long, every text at its longest."""
    ids = [f"kpi-{i:03d}" for i in range(200)]
    return ReportSummary(
        trace_id="trace_20261129_060000_3fa9c1",
        created_at=CREATED,
        status="partial",
        demo=True,
        kpi_count=200,
        alerts=tuple(AlertLine(k, f"{name}{k}", "low", -1.5e9, 2.0, "USD") for k in ids),
        movers=tuple(MoverLine(k, f"{name}{k}", 123.45, 10.0, 1e6, "sats") for k in ids),
        missing=tuple(MissingLine(k, f"{name}{k}", "R" * 300) for k in ids),
        headline="H" * 2000,
        llm_status="partial",
        report_url="https://example.com/" + "p" * 980,
        disclaimer="D" * 1000,
    )


# ---------------------------------------------------------------- limit checks


class TelegramHtml(HTMLParser):
    """Fails on anything outside Telegram's HTML subset and on unclosed tags."""

    ALLOWED = frozenset({"b", "i", "u", "s", "a", "code", "pre"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in self.ALLOWED, tag
        assert [name for name, _ in attrs] == (["href"] if tag == "a" else []), attrs
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open.pop() == tag, tag

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def unknown_decl(self, data: str) -> None:
        raise AssertionError(data)

    def handle_decl(self, decl: str) -> None:
        raise AssertionError(decl)

    def handle_pi(self, data: str) -> None:
        raise AssertionError(data)

    def handle_comment(self, data: str) -> None:
        raise AssertionError(data)


def telegram_text(message: str) -> str:
    """The text Telegram shows, after checking the markup is its HTML subset."""
    assert not re.search(r"&(?!(?:amp|lt|gt|quot|#x?[0-9a-fA-F]+);)", message), message
    parser = TelegramHtml()
    parser.feed(message)
    parser.close()
    assert not parser.open, parser.open
    return "".join(parser.text)


def check_telegram(message: str) -> None:
    assert 0 < utf16_len(message) <= 4096
    telegram_text(message)


def check_email(email: dict[str, str]) -> None:
    assert set(email) == {"subject", "html", "text"}
    assert 0 < len(email["subject"]) <= 150
    assert "\n" not in email["subject"] and "\r" not in email["subject"]
    assert email["html"].startswith("<!DOCTYPE html>")
    assert email["html"].rstrip().endswith("</html>")
    assert email["text"].strip()


def check_discord(payload: dict[str, Any]) -> None:
    assert utf16_len(payload["content"]) <= 2000
    assert payload["allowed_mentions"] == {"parse": []}
    (embed,) = payload["embeds"]
    assert utf16_len(embed["title"]) <= 256
    assert utf16_len(embed["description"]) <= 4096
    assert len(embed["fields"]) <= 25
    for field in embed["fields"]:
        assert 0 < utf16_len(field["name"]) <= 256
        assert 0 < utf16_len(field["value"]) <= 1024
    assert utf16_len(embed["footer"]["text"]) <= 2048
    texts = [embed["title"], embed["description"], embed["footer"]["text"]]
    texts += [text for field in embed["fields"] for text in (field["name"], field["value"])]
    assert sum(utf16_len(text) for text in texts) <= 6000
    assert embed["color"] in (0xE74C3C, 0xF39C12, 0x2ECC71)


def check_slack(payload: dict[str, Any]) -> None:
    assert 0 < utf16_len(payload["text"]) <= 3000
    blocks = payload["blocks"]
    assert 0 < len(blocks) <= 50
    for block in blocks:
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text"
            assert 0 < utf16_len(block["text"]["text"]) <= 150
        elif block["type"] == "section":
            assert block["text"]["type"] == "mrkdwn"
            assert 0 < utf16_len(block["text"]["text"]) <= 3000
        elif block["type"] == "actions":
            (button,) = block["elements"]
            assert len(button["url"]) <= 3000 and len(button["text"]["text"]) <= 75
        else:
            assert block["type"] == "context"
            assert all(utf16_len(e["text"]) <= 2000 for e in block["elements"])


def check_sms(message: str) -> None:
    assert 0 < len(message) <= 160
    assert set(message) <= GSM7_BASIC, set(message) - GSM7_BASIC


def check_all(summary: ReportSummary) -> dict[str, Any]:
    messages = build_messages(summary)
    check_email(messages["email"])
    check_telegram(messages["telegram"])
    check_discord(messages["discord"])
    check_slack(messages["slack"])
    check_sms(messages["sms"])
    json.dumps(messages, allow_nan=False)
    return messages


def everything(messages: dict[str, Any]) -> str:
    return json.dumps(messages, ensure_ascii=False)


# ---------------------------------------------------------------- limits at the extremes


def test_every_limit_holds_at_the_extremes() -> None:
    messages = check_all(huge_summary())
    assert "… and" in messages["telegram"] and "more" in messages["telegram"]
    fields = messages["discord"]["embeds"][0]["fields"]
    assert all("… and" in field["value"] for field in fields)


def test_the_limits_hold_when_escaping_multiplies_the_length() -> None:
    """`&` is five characters in HTML and Slack; a 500-character name of them must still
    be cut by whole lines, never inside an entity."""
    messages = check_all(replace(huge_summary("&<>" * 166), headline="&" * 2000,
                                 disclaimer="<" * 1000))
    assert "&amp;&amp;" in messages["telegram"]


def test_the_limits_hold_with_wide_characters() -> None:
    emoji = "\U0001f680"  # two UTF-16 code units
    check_all(replace(huge_summary(emoji * 250), headline=emoji * 2000))


def test_a_long_list_ends_with_and_n_more() -> None:
    missing = tuple(MissingLine(f"k{i}", f"KPI {i}", "timed out") for i in range(60))
    messages = check_all(make_summary(status="partial", missing=missing))
    assert "KPI 0 (timed out)" in messages["telegram"]
    assert re.search(r"… and \d+ more", messages["telegram"])
    assert re.search(r"… and \d+ more", messages["email"]["text"])


def test_the_link_survives_a_crowded_message() -> None:
    messages = check_all(replace(huge_summary(), report_url=URL))
    assert f'href="{URL.replace("&", "&amp;")}"' in messages["telegram"]
    assert messages["discord"]["embeds"][0]["url"] == URL
    assert URL in messages["sms"]
    assert {"type": "button", "text": {"type": "plain_text", "text": "Open the report"},
            "url": URL, "action_id": "open-report"} in messages["slack"]["blocks"][-2]["elements"]


# ---------------------------------------------------------------- hostile names

HOSTILE = [
    "<script>alert(1)</script>",
    "**bold** _x_ @everyone <@123>",
    "a & b <b>",
    "[link](http://evil)",
    "<!channel> @here",
    "火币 \U0001f680 Ωmega",
    "line one\nline two\r\n<i>three",
]


def hostile_summary(name: str) -> ReportSummary:
    return make_summary(
        status="partial",
        alerts=(AlertLine("a", name, "high", 2.0, 1.0, name),),
        movers=(MoverLine("m", name, 1.0, 1.0, 2.0, "USD"),),
        missing=(MissingLine("x", name, name),),
        headline=f"{name}\n{name}",
        disclaimer=name,
    )


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_escaped_in_every_channel(name: str) -> None:
    messages = check_all(hostile_summary(name))
    telegram, email, slack = messages["telegram"], messages["email"], messages["slack"]
    flat = " ".join(name.split())
    assert flat in telegram_text(telegram)  # shown as text (on one line), not as markup
    assert html.escape(flat, quote=False) in telegram
    assert html.escape(flat) in email["html"]
    for raw in ("<script>", "<b>", "<i>", "<@123>", "<!channel>"):
        if raw in name:
            assert raw not in everything(slack)
            assert raw not in everything(messages["discord"])
            if raw not in ("<b>", "<i>"):  # Telegram's own tags, checked by telegram_text
                assert raw not in telegram
                assert raw not in email["html"]
    assert "@everyone" not in everything(messages["discord"])
    assert "@here" not in everything(messages["discord"])
    assert "**bold**" not in everything(messages["discord"])
    assert "[link](http://evil)" not in everything(messages["discord"])
    assert "[link](http://evil)" not in telegram_text(telegram) or "<a" not in name


def test_email_html_escapes_and_text_keeps_the_name_as_is() -> None:
    email = format_email(hostile_summary("<script>alert(1)</script>"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email["html"]
    assert "<script>alert(1)</script>" in email["text"]  # plain text: nothing to render


def test_slack_escapes_only_its_three_characters() -> None:
    slack = format_slack(hostile_summary("a & b <b>"))
    sections = [b["text"]["text"] for b in slack["blocks"] if b["type"] == "section"]
    assert any("a &amp; b &lt;b&gt;" in text for text in sections)


def test_discord_neutralises_mentions_and_markdown() -> None:
    discord = format_discord(hostile_summary("**bold** _x_ @everyone <@123>"))
    fields = "\n".join(f["value"] for f in discord["embeds"][0]["fields"])
    assert "\\*\\*bold\\*\\* \\_x\\_ @\u200beveryone \\<@\u200b123\\>" in fields
    assert discord["allowed_mentions"] == {"parse": []}


def test_a_url_cannot_break_out_of_its_markup() -> None:
    url = 'https://example.com/a?x=1&y="2"|3>4<5 )6](7'
    messages = check_all(make_summary(report_url=url))
    href = re.search(r'<a href="([^"]*)">', messages["telegram"])
    assert href is not None and '"' not in href.group(1) and "<" not in href.group(1)
    link = re.search(r"<(https://[^|>]*)\|Open the report>", messages["slack"]["text"])
    assert link is not None and "&amp;y=" in link.group(1)
    description = messages["discord"]["embeds"][0]["description"]
    assert re.search(r"\[Open the report\]\(https://example\.com/[^()\s\[\]<>]*\)$",
                     description)
    assert set(messages["sms"]) <= GSM7_BASIC


def test_only_web_links_are_linked() -> None:
    messages = build_messages(make_summary(report_url="javascript:alert(1)"))
    assert "javascript" not in everything({k: v for k, v in messages.items() if k != "webhook"})


# ---------------------------------------------------------------- property

texts = st.text(max_size=300)


@st.composite
def summaries(draw: st.DrawFn) -> ReportSummary:
    name, unit, reason = draw(texts), draw(st.text(max_size=40)), draw(texts)
    n_alerts, n_missing = draw(st.integers(0, 30)), draw(st.integers(0, 30))
    numbers = st.floats(allow_nan=True, allow_infinity=True)
    return ReportSummary(
        trace_id=draw(texts),
        created_at=CREATED,
        status=draw(st.sampled_from(["complete", "partial", "failed"]) | texts),
        demo=draw(st.booleans()),
        kpi_count=draw(st.integers(0, 500)),
        alerts=tuple(AlertLine(f"a{i}", name, "high", draw(numbers), 1.0, unit)
                     for i in range(n_alerts)),
        movers=tuple(MoverLine(f"m{i}", draw(texts), draw(st.none() | numbers), None, 1.0, unit)
                     for i in range(draw(st.integers(0, 5)))),
        missing=tuple(MissingLine(f"x{i}", name, reason) for i in range(n_missing)),
        headline=draw(st.none() | st.text(max_size=3000)),
        llm_status=draw(st.sampled_from(["ok", "off", "failed", "partial"])),
        report_url=draw(st.none() | texts | texts.map(lambda t: "https://e.com/" + t)),
        disclaimer=draw(st.none() | texts),
    )


@given(summaries())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_message_stays_within_its_channel_for_any_text(summary: ReportSummary) -> None:
    messages = check_all(summary)
    if summary.demo:
        assert messages["sms"].startswith("DEMO ")
        assert DEMO_NOTE in messages["telegram"]


# ---------------------------------------------------------------- wording


def test_demo_is_said_plainly_everywhere() -> None:
    messages = check_all(make_summary(demo=True))
    assert messages["email"]["subject"].startswith("[DEMO] ")
    assert DEMO_NOTE in messages["email"]["html"] and DEMO_NOTE in messages["email"]["text"]
    assert messages["telegram"].startswith("<b>[DEMO] ") and DEMO_NOTE in messages["telegram"]
    discord = messages["discord"]
    assert discord["content"].startswith("[DEMO] ")
    assert discord["embeds"][0]["title"].startswith("[DEMO] ")
    assert DEMO_NOTE in discord["embeds"][0]["description"]
    assert messages["slack"]["blocks"][0]["text"]["text"].startswith("[DEMO] ")
    assert DEMO_NOTE in messages["slack"]["text"]
    assert messages["sms"].startswith("DEMO ")
    assert messages["webhook"]["demo"] is True


def test_real_data_says_no_demo() -> None:
    messages = check_all(make_summary())
    assert "DEMO" not in everything(messages)


def test_partial_data_names_the_missing_kpis() -> None:
    missing = (MissingLine("eth", "Ether price", "timed out"),
               MissingLine("fng", "Fear & Greed", "HTTP 503"))
    messages = check_all(make_summary(status="partial", missing=missing,
                                      disclaimer="This report lacks 2 of 5 KPIs."))
    for text in (messages["email"]["text"], telegram_text(messages["telegram"])):
        assert "Partial data: 2 KPIs missing" in text
        assert "Ether price (timed out)" in text and "Fear & Greed (HTTP 503)" in text
        assert "This report lacks 2 of 5 KPIs." in text
    fields = messages["discord"]["embeds"][0]["fields"]
    assert any(f["name"] == "Partial data: 2 KPIs missing" and "Ether price" in f["value"]
               for f in fields)
    assert messages["discord"]["embeds"][0]["color"] == 0xE74C3C  # alerts outrank partial
    assert "Ether price (timed out)" in everything(messages["slack"])
    assert "Partial (2 missing)." in messages["sms"]
    assert "(partial)" in messages["email"]["subject"]


def test_the_headline_is_labelled_ai_generated() -> None:
    messages = check_all(make_summary())
    label = f"{AI_LABEL} Risk appetite rose"
    assert label in messages["email"]["text"] and label in telegram_text(messages["telegram"])
    assert f"<strong>{AI_LABEL}</strong> Risk appetite rose" in messages["email"]["html"]
    assert f"**{AI_LABEL}** Risk appetite rose" in messages["discord"]["embeds"][0]["description"]
    assert f"*{AI_LABEL}* Risk appetite rose" in everything(messages["slack"])
    assert messages["webhook"]["headlineAiGenerated"] is True


def test_without_a_headline_there_is_no_ai_label_and_llm_off_is_said() -> None:
    messages = check_all(make_summary(headline=None, llm_status="off"))
    assert AI_LABEL not in everything(messages)
    for text in (messages["email"]["text"], messages["email"]["html"], messages["telegram"],
                 messages["discord"]["embeds"][0]["description"], everything(messages["slack"])):
        assert LLM_OFF in text
    assert "LLM off." in messages["sms"]


def test_highlights_come_in_order_alerts_movers_link() -> None:
    text = format_email(make_summary())["text"]
    alert = text.index("Fear & Greed: 82.00 index, above the high threshold 75.00 index")
    mover = text.index("Bitcoin price: +3.5% (now $67,234)")
    assert alert < mover < text.index(f"Open the report: {URL}")
    assert "BTC dominance: -1.0% (now 57.1%)" in text


def test_discord_colour_follows_alerts_then_partial() -> None:
    def colour(summary: ReportSummary) -> int:
        return int(format_discord(summary)["embeds"][0]["color"])

    assert colour(make_summary()) == 0xE74C3C
    assert colour(make_summary(alerts=(), status="partial")) == 0xF39C12
    assert colour(make_summary(alerts=())) == 0x2ECC71


# ---------------------------------------------------------------- SMS


def test_sms_keeps_the_link_first_and_says_report_ready_without_one() -> None:
    assert format_sms(make_summary()).endswith(URL)
    long_url = "https://example.com/" + "x" * 150
    sms = format_sms(make_summary(report_url=long_url, demo=True))
    assert sms.startswith("DEMO ") and sms.endswith("Report ready.") and long_url not in sms
    assert format_sms(make_summary(report_url=None)).endswith("Report ready.")


def test_sms_transliterates_to_gsm() -> None:
    alert = AlertLine("k", "Bitcoin — Ünïcødé “€” 火", "high", 2.0, 1.0, "EUR")
    sms = format_sms(make_summary(alerts=(alert,), report_url=None))
    check_sms(sms)
    assert "Bitcoin - Ünicødé \"EUR\" ?" in sms  # ü and ø are GSM, ï is not


# ---------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [(67234.5, "USD", "$67,234"), (1_234_567.0, "", "1.2M"), (54.25, "%", "54.2%"),
     (-3.0, "$", "-$3.00"), (42.0, "index", "42.00 index"), (math.nan, "USD", "n/a")],
)
def test_format_value(value: float, unit: str, shown: str) -> None:
    assert format_value(value, unit) == shown


@pytest.mark.parametrize(
    ("percent", "shown"),
    [(3.456, "+3.5%"), (-12.04, "-12.0%"), (-0.04, "+0.0%"), (1234.5, "+1,234.5%"),
     (math.inf, "n/a")],
)
def test_format_percent(percent: float, shown: str) -> None:
    assert format_percent(percent) == shown


def test_format_signed() -> None:
    assert format_signed(1234.5, "USD") == "+$1,234.50"
    assert format_signed(-2.0, "index") == "-2.00 index"


# ---------------------------------------------------------------- summary and webhook


def consolidated() -> dict[str, Any]:
    """The consolidated analytics as `services.analysis.analyse_job` writes them."""
    def mover(kpi: str, days: int, percent: float, value: float) -> dict[str, Any]:
        return {"kpiId": kpi, "windowDays": days, "percent": percent, "absolute": 1.0,
                "latestValue": value, "alerting": False}

    return {
        "alerts": [{"kpiId": "fng", "kind": "high", "threshold": 75.0, "value": 82.0},
                   {"kpiId": "bad", "kind": "sideways", "threshold": 1, "value": 2}],
        "outliers": ["btc"],
        "topMovers": {"1d": [mover("btc", 1, 3.4, 67234.5), mover("unnamed", 1, -1.0, 5.0)],
                      "7d": [mover("eth", 7, 9.9, 3400.0)], "30d": []},
        "correlations": {"30d": [], "90d": []},
    }


def test_build_summary_reads_the_consolidated_analytics() -> None:
    summary = build_summary(
        trace_id="t1", created_at=CREATED, status="partial", demo=False,
        analytics=consolidated(), names={"fng": "Fear & Greed", "btc": "Bitcoin"},
        units={"fng": "index", "btc": "USD"}, latest={"fng": 82.0, "btc": 67234.5},
        missing={"eth": "timed out"}, headline="Up.", llm_status="ok", report_url=URL,
    )
    assert summary.alerts == (AlertLine("fng", "Fear & Greed", "high", 82.0, 75.0, "index"),)
    assert summary.movers == (MoverLine("btc", "Bitcoin", 3.4, 1.0, 67234.5, "USD"),
                              MoverLine("unnamed", "unnamed", -1.0, 1.0, 5.0, ""))
    assert summary.missing == (MissingLine("eth", "eth", "timed out"),)
    assert summary.kpi_count == 2 and summary.partial


def test_build_summary_falls_back_to_the_7_day_movers() -> None:
    analytics = consolidated()
    analytics["topMovers"]["1d"] = []
    summary = build_summary(
        trace_id="t1", created_at=CREATED, status="complete", demo=False, analytics=analytics,
        names={}, units={}, latest={}, missing={},
    )
    assert summary.movers == (MoverLine("eth", "eth", 9.9, 1.0, 3400.0, "", window_days=7),)
    assert "Top movers (7d)" in format_telegram(summary)
    assert summary.headline is None and summary.llm_status == "off"


def test_build_summary_tolerates_empty_analytics() -> None:
    summary = build_summary(trace_id="t", created_at=CREATED, status="complete", demo=True,
                            analytics={}, names={}, units={}, latest={}, missing={})
    assert (summary.alerts, summary.movers, summary.missing) == ((), (), ())
    check_all(summary)


def test_webhook_is_the_structured_summary() -> None:
    summary = make_summary(alerts=(AlertLine("k", "K", "low", math.nan, 1.0, ""),))
    webhook = format_webhook(summary)
    assert webhook["type"] == "metric-stream.report" and webhook["version"] == 1
    assert webhook["createdAt"] == "2026-11-29T06:00:00Z"
    assert webhook["alerts"][0]["value"] is None  # NaN is not JSON
    assert webhook["movers"][0] == {"kpiId": "btc", "name": "Bitcoin price", "windowDays": 1,
                                    "changePct": 3.456, "changeAbs": 2250.0,
                                    "value": 67234.5, "unit": "USD"}
    assert {k: v for k, v in webhook.items() if k not in ("type", "version")} == \
        summary_to_wire(summary)
    json.dumps(webhook, allow_nan=False)


def test_build_messages_is_json_serialisable() -> None:
    messages = build_messages(huge_summary())
    assert set(messages) == {"email", "telegram", "discord", "slack", "sms", "webhook"}
    assert json.loads(json.dumps(messages, allow_nan=False)) == messages


def test_importing_the_messages_loads_neither_reportlab_nor_matplotlib() -> None:
    code = (
        "import sys, metric_stream.report.messages; "
        "loaded = sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('matplotlib', 'reportlab')); "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
