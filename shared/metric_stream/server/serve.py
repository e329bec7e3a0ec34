"""Running the API with uvicorn: graceful shutdown on SIGINT/SIGTERM (in-flight
requests finish; nothing accepted is lost)."""

from __future__ import annotations

import logging
import signal
import socket
from typing import Any

from metric_stream.api.app import build_api
from metric_stream.bootstrap import Services
from metric_stream.errors import ConfigurationError
from metric_stream.server.asgi import AsgiApp

log = logging.getLogger("metric_stream.serve")


def _server_class() -> Any:
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown, so the process
        dies 'by signal'; a shutdown that finished its work is a clean exit (0)."""

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            await super().shutdown(sockets)
            stopped_by = [signal.Signals(s).name for s in self._captured_signals]
            self._captured_signals.clear()
            if stopped_by:
                log.info("stopped by %s; requests in flight were finished",
                         ", ".join(stopped_by))

    return GracefulServer


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
    # On the embedded store the quick routes (ingestion, health) take well under a
    # millisecond and serialise on SQLite's write lock anyway: running them on the event
    # loop saves a thread hop per request. Remote stores (AWS) always use the pool.
    app = AsgiApp(build_api(services), threads=threads, inline=settings.backend == "embedded")
    config = uvicorn.Config(app, host=host, port=port, access_log=access_log,
                            log_level="info", timeout_graceful_shutdown=30, backlog=4096,
                            lifespan="on", server_header=False)
    server = _server_class()(config)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits when it cannot bind
        if exc.code:
            raise ConfigurationError(f"cannot serve on {host}:{port} (is the port in use?)",
                                     field="--port") from None
    if not server.started:
        raise ConfigurationError(f"cannot serve on {host}:{port} (is the port in use?)",
                                 field="--port")
