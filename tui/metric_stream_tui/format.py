"""How values read on screen: durations, sizes, rates, times, and the tone of a status
(the theme's success / warning / error colours, so light and dark themes both work)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from rich.text import Text
from textual.color import Color
from textual.markup import escape

DASH = "—"

# a status -> the theme variable its text is coloured with
TONES: dict[str, str] = {
    "complete": "success", "collected": "success", "sent": "success", "ok": "success",
    "partial": "warning", "timed_out": "warning", "in_flight": "accent",
    "failed": "error", "dead": "error",
    "collecting": "accent", "analysing": "accent", "packaging": "accent",
    "delivering": "accent",
    "pending": "foreground-muted",
}
RUNNING = ("collecting", "analysing", "packaging", "delivering")


def parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def moment(text: Any, *, seconds: bool = False) -> str:
    """`2026-11-29 06:00` (UTC) from an ISO timestamp."""
    when = parse_time(text)
    if when is None:
        return DASH
    return when.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def relative(text: Any, now: datetime) -> str:
    """`in 3 h 10 min`, `5 min ago`."""
    when = parse_time(text)
    if when is None:
        return DASH
    delta = (when - now).total_seconds()
    span = duration(abs(delta), precise=False)
    return f"in {span}" if delta >= 0 else f"{span} ago"


def duration(seconds: Any, *, precise: bool = True) -> str:
    """`850 ms`, `41 s`, `3 min 05 s`, `2 h 04 min`, `3 d 4 h`."""
    if not isinstance(seconds, int | float):
        return DASH
    value = float(seconds)
    if value < 1 and precise:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s" if precise and value < 10 else f"{value:.0f} s"
    minutes, secs = divmod(round(value), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s" if precise else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def size(count: Any) -> str:
    if not isinstance(count, int | float):
        return DASH
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def percent(rate: Any, digits: int = 1) -> str:
    if not isinstance(rate, int | float):
        return DASH
    return f"{rate * 100:.{digits}f}%"


def number(value: Any) -> str:
    """A value as an operator reads it: thousands separated, at most 6 significant digits."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return DASH if value is None else str(value)
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        whole = abs(value) >= 10_000 or float(value).is_integer()
        return f"{value:,.0f}" if whole else f"{value:,.2f}"
    return f"{value:.6g}"


def compact(value: float) -> str:
    """An axis label: `55k`, `2.5T`, `0.04`."""
    for above, unit, suffix in ((1e12, 1e12, "T"), (1e9, 1e9, "B"), (1e6, 1e6, "M"),
                                (1e4, 1e3, "k")):
        if abs(value) >= above:
            return f"{value / unit:.4g}{suffix}"
    return f"{value:.6g}"


def tone_of(status: str) -> str:
    return TONES.get(status, "foreground")


def toned(status: str, text: str | None = None) -> str:
    """Content markup of `text` (default: the status) in the status's tone."""
    shown = escape(text if text is not None else status.replace("_", " "))
    return f"[${tone_of(status)}]{shown}[/]"


def toned_text(status: str, variables: dict[str, str], text: str | None = None,
               *, bold: bool = False) -> Text:
    """A Rich `Text` in the status's tone, for table cells (which take Rich renderables);
    `variables` are the app's theme variables."""
    tone = tone_of(status)
    if tone == "foreground-muted":
        colour = "dim"  # the variable carries an alpha channel, which Rich cannot read
    else:
        parsed = Color.parse(variables.get(tone) or variables.get("foreground") or "white")
        colour = parsed.rich_color.name if parsed.a == 1 else "default"
    style = f"{'bold ' if bold else ''}{colour}"
    return Text(text if text is not None else status.replace("_", " "), style=style)


def plain(value: Any) -> Text:
    """User-provided text for a table cell, never read as markup."""
    return Text(DASH if value is None or value == "" else str(value))


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def job_state(job: dict[str, Any]) -> str:
    """A job's status said plainly: `partial — 2 of 12 KPIs missing`."""
    status = str(job.get("status", "?"))
    counts = job.get("kpiCounts") or {}
    total = sum(int(v) for v in counts.values()) if counts else len(job.get("kpiIds") or [])
    missed = int(counts.get("failed", 0)) + int(counts.get("timed_out", 0))
    if status == "partial":
        return f"partial — {missed} of {total} KPIs missing"
    if status == "failed" and missed:
        return f"failed — {missed} of {total} KPIs missing"
    if status in RUNNING:
        return f"{status}…"
    return status
