"""Config routes: `GET|PUT /api/config`, `PUT /api/config/retry`, `PUT /api/config/fallback`.

`PUT /api/config` takes the whole document (a section left out returns to its
default); the section routes change only the fields they are given.
"""

from __future__ import annotations

from typing import Any

from metric_stream.api.http import Api, Request, Route
from metric_stream.models.base import parse
from metric_stream.models.config import FallbackConfig, RetryConfig, SystemConfig
from metric_stream.services import admin


def _view(config: SystemConfig) -> dict[str, Any]:
    return config.model_dump(mode="json", by_alias=True, exclude_none=True)


def get_config(api: Api, request: Request) -> dict[str, Any]:
    return _view(api.services.config.get())


def put_config(api: Api, request: Request) -> dict[str, Any]:
    config = parse(SystemConfig, request.json())
    return _view(api.services.config.put(config, api.services.clock.now()))


def put_retry_config(api: Api, request: Request) -> dict[str, Any]:
    return _view(admin.update_config_section(api.services, "retry", request.json()))


def put_fallback_config(api: Api, request: Request) -> dict[str, Any]:
    return _view(admin.update_config_section(api.services, "fallback", request.json()))


ROUTES = [
    Route("GET", "/api/config", get_config, "admin",
          "The system config: retries, fallbacks, job lifecycle, analysis chains",
          responses={200: "the config (SPEC's defaults until changed)"},
          answer="SystemConfig", tag="config"),
    Route("PUT", "/api/config", put_config, "admin",
          "Replace the whole config (a section left out returns to its defaults)",
          SystemConfig, responses={200: "the saved config"}, answer="SystemConfig",
          tag="config"),
    Route("PUT", "/api/config/retry", put_retry_config, "admin",
          "Change retry policies (the policies given replace the stored ones)", RetryConfig,
          responses={200: "the saved config"}, answer="SystemConfig", tag="config"),
    Route("PUT", "/api/config/fallback", put_fallback_config, "admin",
          "Change fallbacks (the fields given replace the stored ones)", FallbackConfig,
          responses={200: "the saved config"}, answer="SystemConfig", tag="config"),
]
