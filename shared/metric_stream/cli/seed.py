"""Seeding the KPI registry from a JSON file of definitions (`init --seed`)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from metric_stream.bootstrap import Services
from metric_stream.errors import AlreadyExists, FieldProblem, InvalidInput
from metric_stream.models.base import problems_of
from metric_stream.models.kpi import KpiDefinition

_DEFINITIONS = TypeAdapter(list[KpiDefinition])


def load_seed(path: Path) -> list[KpiDefinition]:
    """Every definition of the file, or `InvalidInput` naming each bad entry and field."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", field="--seed") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path} is not JSON: {exc.msg} at line {exc.lineno}",
                           field="--seed") from None
    try:
        definitions = _DEFINITIONS.validate_python(raw)
    except ValidationError as exc:
        problems = [FieldProblem(f"{path.name}[{p.field.split('.', 1)[0]}]"
                                 + (f".{p.field.split('.', 1)[1]}" if "." in p.field else ""),
                                 p.message) for p in problems_of(exc)]
        raise InvalidInput(problems) from None
    ids = [d.id for d in definitions]
    doubles = sorted({i for i in ids if ids.count(i) > 1})
    if doubles:
        raise InvalidInput(f"{path.name} defines {doubles} more than once", field="--seed")
    return definitions


def seed_registry(services: Services,
                  definitions: list[KpiDefinition]) -> tuple[list[str], list[str]]:
    """Add the definitions whose ids are not in the registry; returns (added, kept)."""
    now = services.clock.now()
    added, kept = [], []
    for definition in definitions:
        try:
            services.registry.kpis.create(definition.stamped(now))
            added.append(definition.id)
        except AlreadyExists:
            kept.append(definition.id)
    return added, kept
