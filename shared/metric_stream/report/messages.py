"""One brief message per channel type (SPEC step 5), each a pure function of the
`ReportSummary`, shaped the way its channel renders best and kept within its limits.

Every message says DEMO for demo data, names the missing KPIs of a partial report,
labels the LLM headline as AI-generated and says when the LLM analysis was off. Lists
that do not fit lose whole lines and end with "… and N more". Dynamic text is escaped
for its channel before it is measured, and cut by whole characters before it is
escaped, so no cut lands inside a tag or an entity.
"""

from __future__ import annotations

import html
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, urlsplit

from metric_stream.charts.render import format_value as chart_value
from metric_stream.report.summary import (
    AlertLine,
    MissingLine,
    MoverLine,
    ReportSummary,
    iso_utc,
    summary_to_wire,
)

PRODUCT = "Metric Stream"
DEMO_NOTE = "Demo data — not market data"
AI_LABEL = "AI-generated:"
LLM_NOTES = {
    "off": "LLM analysis was off",
    "failed": "LLM analysis failed: the report carries the deterministic analytics only",
    "partial": "LLM analysis is incomplete",
    "skipped": "LLM analysis was skipped: no chain could run with the configured keys",
}
LINK_TEXT = "Open the report"
LINK_TOO_LONG = "Open the report in Metric Stream (its link is too long for this channel)"
ELLIPSIS = "…"

NAME_CHARS = 80
UNIT_CHARS = 16
REASON_CHARS = 100
TOKEN_CHARS = 80
NOTE_LIMIT = 400
HEADLINE_LIMIT = 2000
MIN_HEADLINE = 80
LIST_ROOM = 1200  # kept for list lines when the headline's share is worked out
LINK_LIMIT = 2000

EMAIL_SUBJECT_LIMIT = 150
EMAIL_LIST_CAP = 20
EMAIL_HEADLINE_LIMIT = 5000
TELEGRAM_LIMIT = 4096
TELEGRAM_LIST_CAP = 10
DISCORD_CONTENT_LIMIT = 2000
DISCORD_TITLE_LIMIT = 256
DISCORD_DESCRIPTION_LIMIT = 4096
DISCORD_FIELD_NAME_LIMIT = 256
DISCORD_FIELD_VALUE_LIMIT = 1024
DISCORD_FOOTER_LIMIT = 2048
DISCORD_TOTAL_LIMIT = 6000
DISCORD_LIST_CAP = 10
DISCORD_RED, DISCORD_AMBER, DISCORD_GREEN = 0xE74C3C, 0xF39C12, 0x2ECC71
SLACK_HEADER_LIMIT = 150
SLACK_SECTION_LIMIT = 3000
SLACK_TEXT_LIMIT = 3000
SLACK_BUTTON_URL_LIMIT = 3000
SLACK_LIST_CAP = 15
SMS_LIMIT = 160
SMS_NAME_CHARS = 24

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The GSM 03.38 basic character set (one septet each; the escape code left out)."""

_GSM_SUBSTITUTES = {
    "—": "-", "\u2013": "-", "\u2018": "'", "\u2019": "'", "“": '"', "”": '"', "…": "...",
    "€": "EUR", "•": "-", "·": "-", "→": "->", "[": "(", "]": ")", "{": "(", "}": ")",
    "~": "-", "\\": "/", "|": "/", "^": "", "`": "'",
}
_DISCORD_MARKDOWN = frozenset("\\*_~`|<>#[]")  # "(" and ")" are safe once "[" is
_URL_SAFE = ":/?#@!$&'*+,;=%"  # with letters, digits and "_.-~", kept as they are
_SPACES = re.compile(r"\s+")
_LINE_SPACES = re.compile(r"[^\S\n]+")
_INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")

Escape = Callable[[str], str]
Measure = Callable[[str], int]


# Numbers ----------------------------------------------------------------------------


def format_value(value: float, unit: str) -> str:
    """A value as the charts and the PDF show it (`$67,234`, `54.2%`, `1.2M`, `42 index`),
    "n/a" when it is not finite."""
    return chart_value(value, unit) or "n/a"


def format_signed(value: float, unit: str) -> str:
    """A change with its sign: "+$1,234.50", "-3.00 index"."""
    shown = format_value(value, unit)
    return shown if value < 0 or not math.isfinite(value) else f"+{shown}"


def format_percent(percent: float) -> str:
    """A percent change with its sign and one decimal: "+5.2%", "-0.4%", "+0.0%"."""
    if not math.isfinite(percent):
        return "n/a"
    rounded = round(percent, 1) + 0.0  # no "-0.0%"
    if abs(rounded) >= 1e6:
        return f"{rounded:+.3g}%"
    return f"{rounded:+,.1f}%"


# Text -------------------------------------------------------------------------------


def utf16_len(text: str) -> int:
    """The length as Telegram (and JavaScript) counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _keep(text: str) -> str:
    return text


def clip(
    text: str,
    limit: int,
    escape: Escape = _keep,
    measure: Measure = len,
    ellipsis: str = ELLIPSIS,
) -> str:
    """`text` escaped, cut by whole characters (the cut marked by `ellipsis`) so that
    the measure of the escaped result is at most `limit`. `escape` works character by
    character, so escaping a cut text never splits an entity."""
    escaped = escape(text)
    if measure(escaped) <= limit:
        return escaped
    room = limit - measure(ellipsis)
    if room < 0:
        return ""
    pieces: list[str] = []
    for char in text:
        piece = escape(char)
        room -= measure(piece)
        if room < 0:
            break
        pieces.append(piece)
    return "".join(pieces).rstrip() + ellipsis


def _line(text: str, limit: int) -> str:
    """One line: whitespace runs become one space, control characters go."""
    return clip(_INVISIBLE.sub("", _SPACES.sub(" ", text)).strip(), limit)


def _paragraphs(text: str) -> str:
    lines = (_INVISIBLE.sub("", _LINE_SPACES.sub(" ", line)).strip()
             for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _token(text: str) -> str:
    """An id-like word (status, trace id) reduced to characters no channel reads as markup."""
    return re.sub(r"[^A-Za-z0-9_.:-]", "", text)[:TOKEN_CHARS] or "unknown"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _web_url(url: str | None) -> str | None:
    """An http(s) URL with its unsafe characters percent-encoded, else None."""
    if not url:
        return None
    url = _INVISIBLE.sub("", url).strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return quote(url, safe=_URL_SAFE)


def _escape_html(text: str) -> str:
    return html.escape(text, quote=False)


def _escape_slack(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_discord(text: str) -> str:
    """Markdown characters backslash-escaped; a zero-width space after each `@`, so that
    no `@everyone`, `@here` or `<@id>` mention survives."""
    return "".join("\\" + char if char in _DISCORD_MARKDOWN
                   else "@\u200b" if char == "@" else char for char in text)


def _gsm_char(char: str) -> str:
    if char in GSM7_BASIC:
        return char
    if char in _GSM_SUBSTITUTES:
        return _GSM_SUBSTITUTES[char]
    if unicodedata.combining(char):
        return ""
    plain = "".join(c for c in unicodedata.normalize("NFKD", char) if c in GSM7_BASIC)
    return plain or "?"


def _gsm(text: str) -> str:
    """`text` in the GSM 03.38 basic set: look-alikes substituted, accents dropped when
    the accented letter is not in the set, anything else "?"."""
    return "".join(_gsm_char(char) for char in text)


# What every message says ------------------------------------------------------------


@dataclass(frozen=True)
class _Listing:
    """A titled list of lines (alerts, movers, missing KPIs), and a note under it."""

    heading: str
    items: tuple[str, ...]
    note: str | None = None


@dataclass(frozen=True)
class _Shown:
    """How many of a listing's items fit in the message."""

    listing: _Listing
    count: int

    @property
    def lines(self) -> tuple[str, ...]:
        return self.listing.items[: self.count]

    @property
    def more(self) -> str | None:
        hidden = len(self.listing.items) - self.count
        return f"{ELLIPSIS} and {hidden} more" if hidden else None


@dataclass(frozen=True)
class _Content:
    """The summary as raw, cleaned text; each channel escapes and arranges it."""

    title: str
    demo: bool
    notes: tuple[str, ...]
    listings: tuple[_Listing, ...]
    headline: str | None
    url: str | None
    trace_id: str
    alert_count: int
    partial: bool


def _name(name: str) -> str:
    return _line(name, NAME_CHARS) or "(unnamed)"


def _unit(unit: str) -> str:
    return _line(unit, UNIT_CHARS)


def _alert_line(alert: AlertLine) -> str:
    unit = _unit(alert.unit)
    side = "above" if alert.level == "high" else "below"
    return (f"{_name(alert.name)}: {format_value(alert.value, unit)}, {side} the "
            f"{alert.level} threshold {format_value(alert.threshold, unit)}")


def _change(mover: MoverLine, unit: str) -> str:
    if mover.change_pct is not None:
        return format_percent(mover.change_pct)
    if mover.change_abs is not None:
        return format_signed(mover.change_abs, unit)
    return "n/a"


def _mover_line(mover: MoverLine) -> str:
    unit = _unit(mover.unit)
    return f"{_name(mover.name)}: {_change(mover, unit)} (now {format_value(mover.value, unit)})"


def _missing_line(missing: MissingLine) -> str:
    reason = _line(missing.reason, REASON_CHARS)
    return f"{_name(missing.name)} ({reason})" if reason else _name(missing.name)


def _title(summary: ReportSummary) -> str:
    demo = "[DEMO] " if summary.demo else ""
    day = iso_utc(summary.created_at)[:10]
    state = "partial" if summary.partial else _token(summary.status)
    suffix = f" ({state})" if state in ("partial", "failed") else ""
    return f"{demo}{PRODUCT} daily report {day}{suffix}"


def _notes(summary: ReportSummary) -> tuple[str, ...]:
    state = "partial" if summary.partial else _token(summary.status)
    status = f"Status: {state} · {_plural(summary.kpi_count, 'KPI')}"
    llm = LLM_NOTES.get(summary.llm_status)
    return (status, llm) if llm else (status,)


def _listings(summary: ReportSummary) -> tuple[_Listing, ...]:
    listings = []
    if summary.alerts:
        listings.append(_Listing(f"Alerts ({len(summary.alerts)})",
                                 tuple(_alert_line(a) for a in summary.alerts)))
    if summary.movers:
        listings.append(_Listing(f"Top movers ({summary.movers[0].window_days}d)",
                                 tuple(_mover_line(m) for m in summary.movers)))
    disclaimer = _paragraphs(summary.disclaimer or "") or None
    if summary.partial or disclaimer:
        count = len(summary.missing)
        heading = f"Partial data: {_plural(count, 'KPI')} missing" if count else "Partial data"
        note = disclaimer or (None if count else "Some KPIs could not be collected.")
        listings.append(_Listing(heading, tuple(_missing_line(m) for m in summary.missing),
                                 note))
    return tuple(listings)


def _content(summary: ReportSummary) -> _Content:
    return _Content(
        title=_title(summary),
        demo=summary.demo,
        notes=_notes(summary),
        listings=_listings(summary),
        headline=_paragraphs(summary.headline or "") or None,
        url=_web_url(summary.report_url),
        trace_id=_token(summary.trace_id),
        alert_count=len(summary.alerts),
        partial=summary.partial,
    )


def _always(_: Sequence[_Shown]) -> bool:
    return True


def _fit(
    listings: Sequence[_Listing], cap: int, fits: Callable[[Sequence[_Shown]], bool]
) -> list[_Shown]:
    """At most `cap` items of each listing, then one item less from the longest shown
    list (the later one on a tie: alerts are kept longest) until the message fits."""
    shown = [_Shown(listing, min(cap, len(listing.items))) for listing in listings]
    while not fits(shown):
        widest = max(range(len(shown)), key=lambda i: (shown[i].count, i), default=None)
        if widest is None or shown[widest].count == 0:
            break
        shown[widest] = replace(shown[widest], count=shown[widest].count - 1)
    return shown


@dataclass(frozen=True)
class _Markup:
    """How a text channel escapes dynamic text, marks emphasis and counts length."""

    escape: Escape
    bold: Callable[[str], str]
    bullet: str = "• "
    measure: Measure = utf16_len

    def body(self, shown: _Shown) -> str:
        lines = [self.bullet + self.escape(item) for item in shown.lines]
        if shown.more:
            lines.append(self.escape(shown.more))
        if shown.listing.note:
            lines.append(clip(shown.listing.note, NOTE_LIMIT, self.escape, self.measure))
        return "\n".join(lines)

    def listing(self, shown: _Shown) -> str:
        heading = self.bold(self.escape(shown.listing.heading))
        body = self.body(shown)
        return f"{heading}\n{body}" if body else heading

    def headline(self, text: str) -> str:
        """`text` is escaped already."""
        return f"{self.bold(AI_LABEL)} {text}"

    def head(self, content: _Content) -> str:
        demo = [self.bold(self.escape(DEMO_NOTE))] if content.demo else []
        return "\n".join([*demo, *(self.escape(note) for note in content.notes)])

    def clip_headline(self, content: _Content, budget: int) -> str | None:
        room = min(budget, HEADLINE_LIMIT)
        if content.headline is None or room < MIN_HEADLINE:
            return None
        return clip(content.headline, room, self.escape, self.measure)


def _wrap(before: str, after: str) -> Callable[[str], str]:
    return lambda text: f"{before}{text}{after}"


_TELEGRAM = _Markup(escape=_escape_html, bold=_wrap("<b>", "</b>"))
_DISCORD = _Markup(escape=_escape_discord, bold=_wrap("**", "**"))
_SLACK = _Markup(escape=_escape_slack, bold=_wrap("*", "*"))
_PLAIN = _Markup(escape=_keep, bold=_keep, bullet="- ", measure=len)


def _blocks(*blocks: str | None) -> str:
    return "\n\n".join(block for block in blocks if block)


def _empty(content: _Content) -> list[_Shown]:
    return _fit(content.listings, 0, _always)


# Email ------------------------------------------------------------------------------


def _subject(content: _Content) -> str:
    alerts = f" — {_plural(content.alert_count, 'alert')}" if content.alert_count else ""
    return clip(content.title + alerts, EMAIL_SUBJECT_LIMIT)


def _email_text(content: _Content, shown: Sequence[_Shown], headline: str | None) -> str:
    m = _PLAIN
    link = f"{LINK_TEXT}: {content.url}" if content.url else None
    return _blocks(content.title, m.head(content), *(m.listing(s) for s in shown),
                   m.headline(headline) if headline else None, link,
                   f"Trace {content.trace_id}") + "\n"


_EMAIL_BODY = ("margin:0;padding:24px;background:#f4f5f7;color:#1f2933;"
               "font-family:Arial,Helvetica,sans-serif;font-size:14px;line-height:1.5")
_EMAIL_CARD = "max-width:640px;margin:0 auto;padding:24px;background:#ffffff;border-radius:6px"
_EMAIL_H1 = "margin:0 0 12px;font-size:20px"
_EMAIL_H2 = "margin:20px 0 6px;font-size:16px"
_EMAIL_DEMO = "margin:0 0 12px;padding:8px 12px;background:#fdecea;color:#b42318;font-weight:bold"
_EMAIL_MUTED = "margin:0 0 6px;color:#52606d"
_EMAIL_BUTTON = ("display:inline-block;margin-top:20px;padding:10px 18px;background:#2563eb;"
                 "color:#ffffff;text-decoration:none;border-radius:4px;font-weight:bold")


def _email_listing(shown: _Shown) -> str:
    e = html.escape
    items = "".join(f"<li>{e(item)}</li>" for item in shown.lines)
    parts = [f'<h2 style="{_EMAIL_H2}">{e(shown.listing.heading)}</h2>']
    if items:
        parts.append(f'<ul style="margin:0;padding-left:20px">{items}</ul>')
    if shown.more:
        parts.append(f'<p style="{_EMAIL_MUTED}">{e(shown.more)}</p>')
    if shown.listing.note:
        note = _email_paragraph(clip(shown.listing.note, NOTE_LIMIT))
        parts.append(f'<p style="{_EMAIL_MUTED}">{note}</p>')
    return "\n".join(parts)


def _email_paragraph(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


def _email_html(content: _Content, shown: Sequence[_Shown], headline: str | None) -> str:
    e = html.escape
    parts = [f'<h1 style="{_EMAIL_H1}">{e(content.title)}</h1>']
    if content.demo:
        parts.append(f'<p style="{_EMAIL_DEMO}">{e(DEMO_NOTE)}</p>')
    parts += [f'<p style="{_EMAIL_MUTED}">{e(note)}</p>' for note in content.notes]
    parts += [_email_listing(s) for s in shown]
    if headline:
        parts.append(f'<p style="margin:20px 0 0"><strong>{e(AI_LABEL)}</strong> '
                     f"{_email_paragraph(headline)}</p>")
    if content.url:
        parts.append(f'<p><a href="{e(content.url)}" style="{_EMAIL_BUTTON}">{LINK_TEXT}</a></p>')
    parts.append(f'<p style="{_EMAIL_MUTED};margin-top:24px;font-size:12px">'
                 f"Trace {e(content.trace_id)}</p>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(content.title)}</title>\n</head>\n"
        f'<body style="{_EMAIL_BODY}">\n<div style="{_EMAIL_CARD}">\n'
        + "\n".join(parts)
        + "\n</div>\n</body>\n</html>\n"
    )


def format_email(summary: ReportSummary) -> dict[str, str]:
    """`{"subject", "html", "text"}`: a one-line subject of at most 150 characters, a
    small HTML email with inline styles, and its plain-text twin."""
    content = _content(summary)
    shown = _fit(content.listings, EMAIL_LIST_CAP, _always)
    headline = clip(content.headline, EMAIL_HEADLINE_LIMIT) if content.headline else None
    return {
        "subject": _subject(content),
        "html": _email_html(content, shown, headline),
        "text": _email_text(content, shown, headline),
    }


# Telegram ---------------------------------------------------------------------------


def _telegram_link(content: _Content) -> str | None:
    if content.url is None:
        return None
    href = html.escape(content.url, quote=True)
    if len(href) > LINK_LIMIT:
        return _escape_html(LINK_TOO_LONG)
    return f'<a href="{href}">{LINK_TEXT}</a>'


def _telegram(content: _Content, shown: Sequence[_Shown], headline: str | None) -> str:
    m = _TELEGRAM
    title = m.bold(m.escape(content.title))
    return _blocks(
        f"{title}\n{m.head(content)}",
        *(m.listing(s) for s in shown),
        m.headline(headline) if headline is not None else None,
        _telegram_link(content),
        f"Trace <code>{m.escape(content.trace_id)}</code>",
    )


def format_telegram(summary: ReportSummary) -> str:
    """A Bot API message in HTML parse mode (b, a, code tags only), at most 4096 UTF-16
    code units."""
    content, m = _content(summary), _TELEGRAM
    base = m.measure(_telegram(content, _empty(content), ""))
    headline = m.clip_headline(content, TELEGRAM_LIMIT - base - LIST_ROOM)
    shown = _fit(content.listings, TELEGRAM_LIST_CAP,
                 lambda s: m.measure(_telegram(content, s, headline)) <= TELEGRAM_LIMIT)
    return _telegram(content, shown, headline)


# Discord ----------------------------------------------------------------------------


def _discord_description(content: _Content, headline: str | None) -> str:
    m = _DISCORD
    link = None
    if content.url:
        link = (f"[{LINK_TEXT}]({content.url})" if len(content.url) <= LINK_LIMIT
                else m.escape(LINK_TOO_LONG))
    return _blocks(m.head(content), m.headline(headline) if headline is not None else None,
                   link)


def _discord_embed(content: _Content, shown: Sequence[_Shown], headline: str | None
                   ) -> dict[str, Any]:
    m = _DISCORD
    color = (DISCORD_RED if content.alert_count
             else DISCORD_AMBER if content.partial else DISCORD_GREEN)
    embed: dict[str, Any] = {
        "title": clip(content.title, DISCORD_TITLE_LIMIT, measure=utf16_len),
        "description": _discord_description(content, headline),
        "color": color,
        "fields": [{"name": clip(s.listing.heading, DISCORD_FIELD_NAME_LIMIT, measure=utf16_len),
                    "value": m.body(s) or m.escape(ELLIPSIS), "inline": False}
                   for s in shown],
        "footer": {"text": clip(f"Trace {content.trace_id}", DISCORD_FOOTER_LIMIT)},
    }
    if content.url and len(content.url) <= LINK_LIMIT:
        embed["url"] = content.url
    return embed


def discord_embed_size(embed: dict[str, Any]) -> int:
    """The characters Discord counts against an embed's 6000: title, description,
    field names and values, footer text, author name."""
    texts = [embed.get("title", ""), embed.get("description", ""),
             embed.get("footer", {}).get("text", ""), embed.get("author", {}).get("name", "")]
    for field in embed.get("fields", []):
        texts += [field["name"], field["value"]]
    return sum(utf16_len(text) for text in texts)


def _discord_fits(embed: dict[str, Any]) -> bool:
    return (utf16_len(embed["description"]) <= DISCORD_DESCRIPTION_LIMIT
            and all(utf16_len(f["value"]) <= DISCORD_FIELD_VALUE_LIMIT for f in embed["fields"])
            and discord_embed_size(embed) <= DISCORD_TOTAL_LIMIT)


def format_discord(summary: ReportSummary) -> dict[str, Any]:
    """A webhook payload: one line of content and one embed (alerts, movers and missing
    KPIs as fields), within Discord's limits, with every mention disabled."""
    content, m = _content(summary), _DISCORD
    base = _discord_embed(content, _empty(content), "")
    room = min(DISCORD_DESCRIPTION_LIMIT - m.measure(base["description"]),
               DISCORD_TOTAL_LIMIT - discord_embed_size(base) - LIST_ROOM)
    headline = m.clip_headline(content, room)
    shown = _fit(content.listings, DISCORD_LIST_CAP,
                 lambda s: _discord_fits(_discord_embed(content, s, headline)))
    alerts = f" — {_plural(content.alert_count, 'alert')}" if content.alert_count else ""
    # the title and the headings are fixed text, a date and counts: nothing to escape
    return {
        "content": clip(content.title + alerts, DISCORD_CONTENT_LIMIT, measure=utf16_len),
        "embeds": [_discord_embed(content, shown, headline)],
        "allowed_mentions": {"parse": []},
    }


# Slack ------------------------------------------------------------------------------


def _slack_section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _slack_link(content: _Content) -> dict[str, Any] | None:
    if content.url is None:
        return None
    if len(content.url) > SLACK_BUTTON_URL_LIMIT:
        return _slack_section(_escape_slack(LINK_TOO_LONG))
    button = {"type": "button", "text": {"type": "plain_text", "text": LINK_TEXT},
              "url": content.url, "action_id": "open-report"}
    return {"type": "actions", "elements": [button]}


def _slack_fallback(content: _Content) -> str:
    parts = [content.title]
    if content.demo:
        parts.append(DEMO_NOTE)
    if content.alert_count:
        parts.append(_plural(content.alert_count, "alert"))
    if content.partial:
        parts.append("partial data")
    text = _escape_slack(" · ".join(parts))
    if content.url:  # `|`, `<` and `>` are percent-encoded already (`_web_url`)
        link = f"{text} · <{_escape_slack(content.url)}|{LINK_TEXT}>"
        if utf16_len(link) <= SLACK_TEXT_LIMIT:
            return link
    return clip(text, SLACK_TEXT_LIMIT, measure=utf16_len)


def format_slack(summary: ReportSummary) -> dict[str, Any]:
    """Block Kit: `{"text": fallback, "blocks": [...]}` (header, notes, one section per
    list, the AI-generated headline, a button to the report, the trace)."""
    content, m = _content(summary), _SLACK
    headline = m.clip_headline(content, SLACK_SECTION_LIMIT - m.measure(m.headline("")))
    shown = _fit(content.listings, SLACK_LIST_CAP,
                 lambda s: all(m.measure(m.listing(x)) <= SLACK_SECTION_LIMIT for x in s))
    blocks: list[dict[str, Any] | None] = [
        {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                    "text": clip(content.title, SLACK_HEADER_LIMIT,
                                                 measure=utf16_len)}},
        _slack_section(m.head(content)),
        *(_slack_section(m.listing(s)) for s in shown),
        _slack_section(m.headline(headline)) if headline is not None else None,
        _slack_link(content),
        {"type": "context",
         "elements": [{"type": "mrkdwn", "text": f"Trace `{content.trace_id}`"}]},
    ]
    return {"text": _slack_fallback(content), "blocks": [b for b in blocks if b is not None]}


# SMS --------------------------------------------------------------------------------


def _sms_link(content: _Content, room: int) -> str:
    if content.url is not None:
        url = content.url.replace("~", "%7E")  # "~" is not in the GSM basic set
        if len(url) <= room:
            return url
    return "Report ready."


def _sms_alerts(summary: ReportSummary) -> list[str]:
    if not summary.alerts:
        return ["No alerts."]
    first = summary.alerts[0]
    unit = _unit(first.unit)
    count = _plural(len(summary.alerts), "alert")
    sign = ">" if first.level == "high" else "<"
    detail = (f"{_line(first.name, SMS_NAME_CHARS)} {format_value(first.value, unit)} "
              f"{sign} {format_value(first.threshold, unit)}")
    return [f"{count}: {detail}.", f"{count}."]


def _sms_status(summary: ReportSummary) -> list[str]:
    if summary.partial:
        return [f"Partial ({len(summary.missing)} missing).", "Partial."]
    return [f"{_token(summary.status).capitalize()}."]


def _sms_optional(summary: ReportSummary) -> list[tuple[int, list[str]]]:
    """(position in the message, variants longest first), in order of priority."""
    day = iso_utc(summary.created_at)[:10]
    optional = [(2, _sms_status(summary)), (3, _sms_alerts(summary)), (1, [f"{PRODUCT} {day}:"])]
    if summary.movers:
        mover = summary.movers[0]
        optional.append((4, [f"Top: {_line(mover.name, SMS_NAME_CHARS)} "
                             f"{_change(mover, _unit(mover.unit))}."]))
    if summary.llm_status == "off":
        optional.append((5, ["LLM off."]))
    return optional


def format_sms(summary: ReportSummary) -> str:
    """At most 160 characters of the GSM 03.38 basic set. DEMO and the link come first
    (or "Report ready." when the link cannot fit); then, as room allows, the status,
    the alerts, the date, the top mover and the LLM note."""
    content = _content(summary)
    chosen = {0: "DEMO"} if summary.demo else {}
    chosen[9] = _sms_link(content, SMS_LIMIT - sum(len(t) + 1 for t in chosen.values()))

    def size(parts: dict[int, str]) -> int:
        return sum(len(text) for text in parts.values()) + len(parts) - 1

    for position, variants in _sms_optional(summary):
        for variant in (_gsm(v) for v in variants):
            if size({**chosen, position: variant}) <= SMS_LIMIT:
                chosen[position] = variant
                break
    return " ".join(chosen[position] for position in sorted(chosen))


# Webhook and all ----------------------------------------------------------------------


def format_webhook(summary: ReportSummary) -> dict[str, Any]:
    """The structured summary for a webhook endpoint (camelCase JSON)."""
    return {"type": "metric-stream.report", "version": 1, **summary_to_wire(summary)}


def build_messages(summary: ReportSummary) -> dict[str, Any]:
    """One message per channel type, JSON-serialisable (kept in the consolidated package)."""
    return {
        "email": format_email(summary),
        "telegram": format_telegram(summary),
        "discord": format_discord(summary),
        "slack": format_slack(summary),
        "sms": format_sms(summary),
        "webhook": format_webhook(summary),
    }
