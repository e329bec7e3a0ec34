"""Running the API with uvicorn: graceful shutdown on SIGINT/SIGTERM (in-flight
requests finish; nothing accepted is lost). The cycle's loops (schedule tick, stage
workers) run in this same process, started before uvicorn and stopped after it."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from typing import Any

from metric_stream.api.app import build_api
from metric_stream.bootstrap import Services
from metric_stream.errors import ConfigurationError
from metric_stream.logs import configure_logging
from metric_stream.logs import environment as logs_environment
from metric_stream.server.asgi import AsgiApp
from metric_stream.server.loops import CycleLoops
from metric_stream.settings import Settings

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


_THREADS_ENV = "METRIC_STREAM_SERVE_THREADS"


def _die_with_parent() -> None:
    """A worker whose supervisor is killed outright (SIGKILL) gets SIGTERM and shuts
    down gracefully, instead of serving on as an orphan (Linux; elsewhere a no-op)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() == 1:  # the supervisor died before we got here
        os.kill(os.getpid(), signal.SIGTERM)


def create_app() -> AsgiApp:
    """The app of one HTTP worker process, built from the environment (`serve` with
    several workers hands its settings down that way)."""
    from metric_stream.bootstrap import build_services

    _die_with_parent()
    configure_logging(default_level="info", capture_warnings=True)  # as serve's, by its env
    services = build_services()
    threads = int(os.environ.get(_THREADS_ENV, "16"))
    return AsgiApp(build_api(services), threads=threads,
                   inline=services.settings.backend == "embedded")


def serve(services: Services, *, host: str = "127.0.0.1", port: int = 8080,
          threads: int = 16, access_log: bool = False, workers: int = 1,
          loops: CycleLoops | None = None) -> None:
    """Serve until SIGINT/SIGTERM; `loops` (the cycle's tick and stage workers) run
    beside the HTTP server from just before it starts until just after it stops."""
    settings = services.settings
    if settings.ingestion_key is None and settings.hmac_secret is None:
        log.warning("no METRIC_STREAM_INGESTION_KEY or METRIC_STREAM_HMAC_SECRET is set: "
                    "ingestion routes refuse every request")
    if settings.admin_key is None:
        log.warning("no METRIC_STREAM_ADMIN_KEY is set: admin routes refuse every request")
    services.init()
    _check_port(host, port)  # before the loops start: a server that cannot bind fires nothing
    if loops is not None:
        loops.start()
    try:
        if workers > 1:
            _serve_workers(settings, host=host, port=port, threads=threads,
                           access_log=access_log, workers=workers)
        else:
            _serve_one(services, host=host, port=port, threads=threads, access_log=access_log)
    finally:
        if loops is not None:
            loops.stop()


def _check_port(host: str, port: int) -> None:
    try:
        with socket.socket() as probe:  # fail clearly before starting anything
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError:
        raise ConfigurationError(f"cannot serve on {host}:{port} (is the port in use?)",
                                 field="--port") from None


def _serve_one(services: Services, *, host: str, port: int, threads: int,
               access_log: bool) -> None:
    import uvicorn

    settings = services.settings
    # On the embedded store the quick routes (ingestion, health) take well under a
    # millisecond and serialise on SQLite's write lock anyway: running them on the event
    # loop saves a thread hop per request. Remote stores (AWS) always use the pool.
    app = AsgiApp(build_api(services), threads=threads, inline=settings.backend == "embedded")
    # log_config=None: uvicorn's lines go through our handler (text or JSON), not its own
    config = uvicorn.Config(app, host=host, port=port, access_log=access_log,
                            log_level="info", log_config=None, timeout_graceful_shutdown=30,
                            backlog=4096, lifespan="on", server_header=False)
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


def _serve_workers(settings: Settings, *, host: str, port: int, threads: int,
                   access_log: bool, workers: int) -> None:
    """Several HTTP worker processes on one socket (uvicorn's supervisor): the request
    work (HTTP, JSON, validation) runs on every core; writes to the embedded store
    take turns through its cross-process lock."""
    import uvicorn

    os.environ["METRIC_STREAM_BACKEND"] = settings.backend
    os.environ["METRIC_STREAM_HOME"] = str(settings.home.resolve())
    os.environ[_THREADS_ENV] = str(threads)
    os.environ.update(logs_environment())
    uvicorn.run("metric_stream.server.serve:create_app", factory=True, host=host, port=port,
                workers=workers, access_log=access_log, log_level="info", log_config=None,
                timeout_graceful_shutdown=30, backlog=4096, lifespan="on",
                server_header=False)
