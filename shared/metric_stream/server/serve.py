"""Running the API with uvicorn: graceful shutdown on SIGINT/SIGTERM (in-flight
requests finish; nothing accepted is lost)."""

from __future__ import annotations

import logging

from metric_stream.api.app import build_api
from metric_stream.bootstrap import Services
from metric_stream.errors import ConfigurationError
from metric_stream.server.asgi import AsgiApp

log = logging.getLogger("metric_stream.serve")


def serve(services: Services, *, host: str = "127.0.0.1", port: int = 8080,
          threads: int = 16, access_log: bool = False) -> None:
    import uvicorn

    settings = services.settings
    if settings.ingestion_key is None and settings.hmac_secret is None:
        log.warning("no METRIC_STREAM_INGESTION_KEY or METRIC_STREAM_HMAC_SECRET is set: "
                    "ingestion routes refuse every request")
    if settings.admin_key is None:
        log.warning("no METRIC_STREAM_ADMIN_KEY is set: admin routes refuse every request")
    services.init()
    app = AsgiApp(build_api(services), threads=threads)
    config = uvicorn.Config(app, host=host, port=port, access_log=access_log,
                            log_level="info", timeout_graceful_shutdown=30, backlog=4096,
                            lifespan="on", server_header=False)
    server = uvicorn.Server(config)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits when it cannot bind
        if exc.code:
            raise ConfigurationError(f"cannot serve on {host}:{port} (is the port in use?)",
                                     field="--port") from None
    if not server.started:
        raise ConfigurationError(f"cannot serve on {host}:{port} (is the port in use?)",
                                 field="--port")
