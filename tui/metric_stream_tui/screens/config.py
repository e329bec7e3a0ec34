"""6 Configuration: the system config of `GET /api/config` as one form — retries per
kind, fallbacks, job lifecycle, LLM and delivery settings — and the analysis chains as
JSON. `ctrl+s` sends the whole document with `PUT /api/config`.

What cannot be sent at all (a number that is not one, JSON that does not parse: its
line and column) is said under its field without asking the API; what the API refuses
(its 422 names the field, `retry.llm: delaysS must give one wait per retry`) is shown
under that field, and nothing is saved."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Select, Static, TextArea

from metric_stream_tui.client import ClientError
from metric_stream_tui.modals import ConfirmModal
from metric_stream_tui.screens.base import AdminScreen
from metric_stream_tui.screens.form import FieldErrors
from metric_stream_tui.widgets import FormField

Kind = Literal["int", "float", "optional_int", "waits", "text", "bool", "choice"]
CHAINS = "analysisChains"
RETRY_KINDS = ("collection", "chart", "llm", "delivery")


@dataclass(frozen=True)
class Setting:
    """One field of the form: its path in the API's document (`lifecycle.fanInTimeoutS`),
    its label, how its text reads, and a hint (an input's placeholder)."""

    path: str
    label: str
    kind: Kind = "int"
    hint: str = ""
    choices: tuple[str, ...] = ()

    @property
    def widget_id(self) -> str:
        return self.path.replace(".", "-")


Row = Sequence[Setting]


@dataclass(frozen=True)
class Group:
    title: str
    rows: Sequence[Row]


RETRIES = Group("Retries", [
    (Setting(f"retry.{kind}.retries", f"{title}: retries"),
     Setting(f"retry.{kind}.delaysS", "waits (s)", "waits", "one per retry: 1, 2, 4"))
    for kind, title in zip(RETRY_KINDS, ("Collection", "Chart", "LLM", "Delivery"),
                           strict=True)])
FALLBACKS = Group("Fallbacks", [
    (Setting("fallback.chart", "A failed chart shows", "choice", choices=("image", "text")),
     Setting("fallback.chartText", "this text", "text")),
    (Setting("fallback.llmNote", "Note a failed analysis", "bool"),
     Setting("fallback.retryFailedDeliveriesNextRun", "Resend failures next run",
             "bool")),
])
LIFECYCLE = Group("Job lifecycle", [
    (Setting("lifecycle.fanInTimeoutS", "Fan-in wait (s)"),
     Setting("lifecycle.pollIntervalS", "Poll every (s)"),
     Setting("retentionDays", "History (days)")),
    (Setting("lifecycle.deliverPartial", "Deliver partial", "bool"),
     Setting("lifecycle.partialDisclaimer", "with this disclaimer", "text")),
])
LLM = Group("LLM", [
    (Setting("llm.timeoutS", "Timeout (s)", "float"),
     Setting("llm.maxTokens", "Max tokens"),
     Setting("llm.temperature", "Temperature", "float")),
    (Setting("llm.concurrency", "Chains at once"),
     Setting("llm.jobTokenBudget", "Tokens per job", "optional_int", "no limit"),
     Setting("llm.maxAnswerChars", "Answer chars")),
    (Setting("llm.consolidated", "Consolidated chain", "bool"),),
])
DELIVERY = Group("Delivery", [
    (Setting("delivery.concurrency", "Sends at once"),
     Setting("delivery.perHost", "Per host"),
     Setting("delivery.timeoutS", "Timeout (s)", "float")),
    (Setting("delivery.jitter", "Jitter (0-1)", "float"),
     Setting("delivery.autoDisableAfterS", "Disable after (s)"),
     Setting("delivery.processes", "Processes, 0=auto")),
    (Setting("delivery.deadLetterAlert", "Dead-letter alert"),
     Setting("delivery.storageAlertBytes", "Storage alert (bytes)", "optional_int", "off")),
])
LEFT = (RETRIES, FALLBACKS)
RIGHT = (LIFECYCLE, LLM, DELIVERY)
DEFAULT_CHAIN = Setting("defaultChain", "Default chain (a key of the chains below)", "text")
SETTINGS: tuple[Setting, ...] = (
    *(s for g in (*LEFT, *RIGHT) for row in g.rows for s in row), DEFAULT_CHAIN)
BY_PATH = {s.path: s for s in SETTINGS}
READ_ONLY = ("updatedAt",)


def get_path(document: dict[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def set_path(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        document = document.setdefault(part, {})
    if value is None:
        document.pop(last, None)  # an optional setting left empty: the default (none)
    else:
        document[last] = value


def text_of(setting: Setting, value: Any) -> str:
    if value is None:
        return ""
    if setting.kind == "waits":
        return ", ".join(f"{v:g}" for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parse_text(setting: Setting, text: str) -> Any:
    """The value to send for a field's text; ValueError says why it cannot be sent.
    Ranges are the API's to check (its message then names the limit)."""
    text = text.strip()
    if setting.kind == "text":
        return text
    if setting.kind == "optional_int" and not text:
        return None
    if setting.kind == "waits":
        parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p]
        try:
            return [float(p) for p in parts]
        except ValueError:
            raise ValueError("must be numbers of seconds, e.g. 1, 2, 4") from None
    if setting.kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError("must be a number") from None
    try:
        return int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise ValueError("must be a whole number") from None


def chains_text(config: dict[str, Any]) -> str:
    return json.dumps(config.get(CHAINS) or {}, indent=2, ensure_ascii=False)


class ChainsSyntaxError(ValueError):
    def __init__(self, line: int, column: int, reason: str) -> None:
        super().__init__(f"line {line}, column {column}: {reason}")
        self.line = line
        self.column = column


def parse_chains(text: str) -> dict[str, Any]:
    """The chains' JSON as an object; `ChainsSyntaxError` where it stops parsing."""
    try:
        chains = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ChainsSyntaxError(exc.lineno, exc.colno, exc.msg) from None
    if not isinstance(chains, dict):
        raise ValueError('must be a JSON object of chains by id: {"default": {"steps": [...]}}')
    return chains


class ConfigScreen(FieldErrors, AdminScreen):
    section = "config"
    help_rows: ClassVar[list[tuple[str, str]]] = [
        ("tab shift+tab", "next / previous field"),
        ("esc", "leave the field (the number keys switch sections again)"),
        ("space", "tick a checkbox"), ("enter", "open a choice")]

    DEFAULT_CSS = """
    ConfigScreen #form { height: 1fr; padding: 0 1; }
    ConfigScreen #problem { color: $error; height: auto; padding: 0 1; }
    ConfigScreen #problem.-empty { display: none; }
    ConfigScreen #columns { height: auto; }
    ConfigScreen .column { width: 1fr; height: auto; }
    ConfigScreen .group { height: auto; border: round $foreground 20%;
        border-title-color: $foreground-muted; padding: 0 1; }
    ConfigScreen .group:focus-within { border: round $accent; border-title-color: $accent; }
    ConfigScreen .row { height: auto; }
    ConfigScreen .row > FormField { width: 1fr; margin-right: 1; }
    ConfigScreen Input, ConfigScreen Select { width: 1fr; }
    ConfigScreen Input { background: $boost; padding: 0 1; }
    ConfigScreen Input:focus { background: $accent 20%; }
    ConfigScreen #chains-group { height: auto; }
    ConfigScreen #field-defaultChain { width: 60; }
    ConfigScreen #analysisChains { height: 16; border: none; background: $boost; }
    ConfigScreen #analysisChains:focus { background: $accent 10%; }
    """

    AUTO_FOCUS = "#form"  # not a field: the number keys keep switching sections
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "leave_field", "Leave field", show=False),
        Binding("r", "reload", "Reload", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.config: dict[str, Any] | None = None
        self.shown: dict[str, Any] = {}
        """What the form showed when filled: edits are what differs from it."""

    # ---------------------------------------------------------------- layout
    def compose_body(self) -> ComposeResult:
        yield Static("", id="problem", classes="-empty")
        with VerticalScroll(id="form"):
            with Horizontal(id="columns"):
                for column in (LEFT, RIGHT):
                    with Vertical(classes="column"):
                        for group in column:
                            yield self._group(group)
            with Vertical(id="chains-group", classes="group") as chains:
                chains.border_title = "Analysis chains"
                yield self._field(DEFAULT_CHAIN)
                yield FormField(
                    "Chains (JSON: each id with its steps: kind, provider, model, prompt, "
                    "enabled)",
                    TextArea("", id=CHAINS, show_line_numbers=True, tab_behavior="focus"),
                    field=CHAINS)
            yield Static("[$foreground-muted]ctrl+s saves everything · r reloads the "
                         "stored config · the API checks each value[/]", classes="hint")

    def _group(self, group: Group) -> Widget:
        rows = [Horizontal(*(self._field(s) for s in row), classes="row") for row in group.rows]
        box = Vertical(*rows, classes="group")
        box.border_title = group.title
        return box

    def _field(self, setting: Setting) -> FormField:
        control: Widget
        if setting.kind == "bool":
            control = Checkbox("on", id=setting.widget_id, compact=True)
        elif setting.kind == "choice":
            control = Select([(c, c) for c in setting.choices], id=setting.widget_id,
                             allow_blank=False, compact=True)
        else:
            control = Input(id=setting.widget_id, compact=True, placeholder=setting.hint)
        return FormField(setting.label, control, field=setting.widget_id)

    def action_leave_field(self) -> None:
        self.query_one("#form").focus()

    # ---------------------------------------------------------------- loading
    async def fetch(self) -> None:
        config = await self.client.config()
        if self.config is not None and self.edited:
            self.config = config  # a reload (reconnection) keeps what is being typed
            return
        self.fill(config)

    def fill(self, config: dict[str, Any]) -> None:
        self.config = config
        for setting in SETTINGS:
            value = get_path(config, setting.path)
            if setting.kind == "bool":
                self.query_one(f"#{setting.widget_id}", Checkbox).value = bool(value)
            elif setting.kind == "choice":
                self.query_one(f"#{setting.widget_id}", Select).value = (
                    value if value in setting.choices else setting.choices[0])
            else:
                self.query_one(f"#{setting.widget_id}", Input).value = text_of(setting, value)
        self.chains_area.load_text(chains_text(config))
        self.clear_errors()
        self.shown = self.values()

    @property
    def chains_area(self) -> TextArea:
        return self.query_one(f"#{CHAINS}", TextArea)

    def values(self) -> dict[str, Any]:
        """What each field holds now (its text, or a checkbox's tick)."""
        held: dict[str, Any] = {}
        for setting in SETTINGS:
            widget = self.query_one(f"#{setting.widget_id}")
            held[setting.path] = (widget.value if isinstance(widget, Checkbox | Select | Input)
                                  else None)
        held[CHAINS] = self.chains_area.text
        return held

    @property
    def edited(self) -> bool:
        return self.config is not None and self.values() != self.shown

    def action_reload(self) -> None:
        if not self.edited:
            self.reload()
            return
        self.app.push_screen(
            ConfirmModal("Discard your changes and show the stored configuration again?",
                         "Discard", title="Unsaved changes"),
            self.answer(self.discard))

    def discard(self) -> None:
        self.shown = self.values()  # nothing counts as edited: the fetch fills the form
        self.reload()

    # ---------------------------------------------------------------- saving
    def body(self) -> dict[str, Any] | None:
        """The whole config to send, or None when a field cannot even be sent (shown
        inline)."""
        self.clear_errors()
        if self.config is None:
            return None
        body = {k: v for k, v in copy.deepcopy(self.config).items() if k not in READ_ONLY}
        problems: dict[str, str] = {}
        for setting in SETTINGS:
            widget = self.query_one(f"#{setting.widget_id}")
            if isinstance(widget, Checkbox | Select):
                set_path(body, setting.path, widget.value)
            elif isinstance(widget, Input):
                try:
                    set_path(body, setting.path, parse_text(setting, widget.value))
                except ValueError as exc:
                    problems[setting.widget_id] = str(exc)
        try:
            body[CHAINS] = parse_chains(self.chains_area.text)
        except ValueError as exc:
            problems[CHAINS] = str(exc)
            if isinstance(exc, ChainsSyntaxError):
                self.chains_area.move_cursor((exc.line - 1, exc.column - 1))
        if problems:
            self.show_errors(problems)
            self._problem(f"{len(problems)} field{'s' if len(problems) > 1 else ''} "
                          "cannot be sent as typed: nothing was saved")
            self._focus_first_error()
            return None
        return body

    def action_save(self) -> None:
        body = self.body()
        if body is not None:
            self.save(body)

    @work(exclusive=True, group="save", exit_on_error=False)
    async def save(self, body: dict[str, Any]) -> None:
        try:
            saved = await self.client.put_config(body)
        except ClientError as error:
            if error.status != 422:
                raise  # not about a value: the app's notification says it
            self.show_problems(error)
            return
        self.fill(saved)
        self.notify("Configuration saved", timeout=3)

    # ---------------------------------------------------------------- inline errors
    def show_problems(self, error: ClientError) -> None:
        """Each reason under its field, the whole message on top."""
        found: dict[str, list[str]] = {}
        problems = error.problems()
        if not problems:  # a rule across fields: "defaultChain 'x' is not in ..."
            first = error.message.split(" ", 1)[0]
            if field_of(first) is not None:
                problems = [(first, error.message)]
        for path, reason in problems:
            name = field_of(path)
            if name is None:
                continue
            reason = reason.replace("Input should be", "must be")  # pydantic's phrasing
            shown = f"{path}: {reason}" if name == CHAINS else reason
            found.setdefault(name, []).append(shown)
        for name, reasons in found.items():
            self.show_error(name, "; ".join(reasons))
        self._problem(f"{error.title}: {error.message} — nothing was saved")
        self._focus_first_error()

    def _problem(self, text: str) -> None:
        self.show_problem(escape(text))

    def _focus_first_error(self) -> None:
        first = self.focus_first_error()
        if first is not None:
            first.scroll_visible(animate=False)

    def invalid_fields(self) -> Iterator[str]:
        for field in self.query(".-invalid"):
            if isinstance(field, FormField):
                yield field.field


def field_of(path: str) -> str | None:
    """The form's field (a widget id) for a path the API names, or None: an exact
    setting; a setting under it (`retry.llm` -> its waits, where the count must
    match); the setting above it (`retry.llm.delaysS.0`); anything in the chains."""
    if path == CHAINS or path.startswith(f"{CHAINS}."):
        return CHAINS
    if path in BY_PATH:
        return BY_PATH[path].widget_id
    below = [s for s in SETTINGS if s.path.startswith(f"{path}.")]
    if below:
        return below[-1].widget_id
    above = [s for s in SETTINGS if path.startswith(f"{s.path}.")]
    return above[0].widget_id if above else None
