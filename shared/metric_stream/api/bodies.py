"""Reading admin request bodies: field paths as the sender wrote them, the path's id,
and the read-only fields of an answer (so that what a GET answered can be PUT back)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel

from metric_stream.api.http import Request
from metric_stream.errors import FieldProblem, InvalidInput
from metric_stream.models.base import parse

M = TypeVar("M", bound=BaseModel)

# pydantic names union members in error locations (`source.n8n.webhookUrl`,
# `kpis.literal['all','alerts']`); the sender wrote neither.
_UNION_MEMBER = re.compile(r"^(n8n|collector|literal\[.*\]|list\[.*\]|str|int|float|bool)$")


def _sender_path(path: str, tagged: frozenset[str]) -> str:
    parts = path.split(".")
    kept = [p for i, p in enumerate(parts)
            if not (i > 0 and parts[i - 1] in tagged and _UNION_MEMBER.match(p))]
    return ".".join(kept)


def parse_body(model: type[M], data: Any, *, read_only: Iterable[str] = (),
               unions: Iterable[str] = ()) -> M:
    """`data` as `model`, leaving out the answer-only fields `read_only`; `unions` are
    the fields whose member tags are dropped from error paths."""
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in set(read_only)}
    tagged = frozenset(unions)
    try:
        return parse(model, data)
    except InvalidInput as exc:
        raise InvalidInput([FieldProblem(_sender_path(p.field, tagged), p.message)
                            for p in exc.problems]) from None


def with_path_id(request: Request, name: str = "id") -> Any:
    """The body, with the path's id filled in when the body leaves it out."""
    body = request.json()
    if isinstance(body, dict):
        body.setdefault(name, request.path_params[name])
    return body


def query_flag(request: Request, name: str) -> bool:
    text = request.query.get(name, "").lower()
    if text in ("", "false", "0", "no"):
        return False
    if text in ("true", "1", "yes"):
        return True
    raise InvalidInput("must be true or false", field=name)
