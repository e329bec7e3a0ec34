"""`serve --emulate-aws`: the aws backend against a moto server on loopback, so the
AWS code paths (DynamoDB, S3, SQS) run on a machine without an account.

The moto server is a child process, started before serve and stopped after it (and
killed with it if serve is killed). Run as a module, this is that child: moto's
server with DynamoDB requests taken one at a time, because moto applies a request
to an item without a lock, where DynamoDB is atomic per item (conditional writes
are what keeps the cycle exactly-once).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from metric_stream.errors import ConfigurationError

# Fake credentials, always: nothing signed in emulation may be valid on a real account.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SESSION_TOKEN": "testing"}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextmanager
def emulated_aws(port: int | None = None, *, host: str = "127.0.0.1",
                 startup_timeout: float = 30.0) -> Iterator[str]:
    """Start a moto server and point this process (and the processes it starts) at it
    through the environment; yields the endpoint URL. Everything is undone on exit."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        raise ConfigurationError("--emulate-aws needs moto's server: pip install 'moto[server]'",
                                 field="--emulate-aws")
    port = port or free_port(host)
    try:
        with socket.socket() as probe:  # something else listening there would pass for moto
            probe.bind((host, port))
    except OSError:
        raise ConfigurationError(f"cannot run moto on {host}:{port} (is the port in use?)",
                                 field="--moto-port") from None
    endpoint = f"http://{host}:{port}"
    # Its own session: a Ctrl-C or SIGTERM to serve's process group must not stop moto
    # before serve has finished its requests; serve stops it last.
    command = [sys.executable, "-m", "metric_stream.server.emulate", "--host", host,
               "--port", str(port)]
    from metric_stream.logs import environment as logs_environment

    child = subprocess.Popen(command, stdin=subprocess.DEVNULL,  # noqa: S603 (our own module)
                             start_new_session=True,
                             env={**os.environ, **logs_environment()})  # serve's log format
    try:
        _wait_ready(child, host, port, startup_timeout)
        with _environment({"METRIC_STREAM_BACKEND": "aws",
                           "METRIC_STREAM_AWS_ENDPOINT_URL": endpoint, **FAKE_CREDENTIALS}):
            yield endpoint
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _wait_ready(child: subprocess.Popen[bytes], host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise ConfigurationError(f"the moto server exited at start (code {child.returncode});"
                                     f" is port {port} free?", field="--moto-port")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ConfigurationError(f"the moto server did not listen on {host}:{port} within "
                             f"{timeout:g} s", field="--moto-port")


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# ---------------------------------------------------------------- the child process
WsgiApp = Any


def one_dynamodb_request_at_a_time(app: WsgiApp) -> WsgiApp:
    lock = threading.Lock()

    def serialised(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB"):
            with lock:
                return list(app(environ, start_response))
        result: Iterable[bytes] = app(environ, start_response)
        return result

    return serialised


def main(argv: list[str] | None = None) -> None:
    import logging

    from metric_stream.server.serve import _die_with_parent

    parser = argparse.ArgumentParser(description="moto's server for serve --emulate-aws")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    _die_with_parent()
    from metric_stream.logs import configure_logging

    configure_logging(default_level="warning")  # serve's format and level, by its env
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto's own server main does
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, one_dynamodb_request_at_a_time(app), threaded=True,
               request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
