"""Running the Cloudflare Worker proxy for real: `wrangler dev` (workerd, offline) on
127.0.0.1 in front of `metric-stream serve`, a JWKS server standing in for Cloudflare
Access, and Access tokens signed by its key. Shared by the proxy tests and
`bench/proxy.py`."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

REPO = Path(__file__).resolve().parents[2]
WRANGLER_DIR = REPO / "wrangler"
PROXY_SECRET = "proxy-secret-for-the-worker-tests"
ADMIN_KEY = "admin-key-for-the-worker-tests"
INGEST_KEY = "ingest-key-for-the-worker-tests"
AUDIENCE = "metric-stream-access-aud"
ISSUER = "https://metric-stream-team.cloudflareaccess.com"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# ---------------------------------------------------------------- Cloudflare Access
class AccessKeys:
    """An RSA key, its JWKS (as Cloudflare Access publishes it), and tokens it signs."""

    def __init__(self, kid: str = "test-key-1") -> None:
        self.kid = kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        size = (numbers.n.bit_length() + 7) // 8
        return {"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                          "n": _b64(numbers.n.to_bytes(size, "big")),
                          "e": _b64(numbers.e.to_bytes(3, "big"))}]}

    def token(self, *, audience: str = AUDIENCE, issuer: str = ISSUER,
              expires_in: int = 600, kid: str | None = None,
              claims: Mapping[str, Any] | None = None) -> str:
        now = int(time.time())
        header = {"alg": "RS256", "kid": kid or self.kid, "typ": "JWT"}
        payload = {"aud": [audience], "iss": issuer, "iat": now - 5, "nbf": now - 5,
                   "exp": now + expires_in, "sub": "operator-1",
                   "email": "operator@example.com", **(claims or {})}
        signing_input = (_b64(json.dumps(header).encode()) + "."
                         + _b64(json.dumps(payload).encode()))
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64(signature)


@contextmanager
def jwks_server(keys: AccessKeys) -> Iterator[str]:
    """Serve `keys`' JWKS at http://127.0.0.1:PORT/cdn-cgi/access/certs."""
    body = json.dumps(keys.jwks()).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path.startswith("/cdn-cgi/access/certs") else 404)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/cdn-cgi/access/certs"
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- processes
@dataclass
class Process:
    url: str
    process: subprocess.Popen[str]
    log: Path
    handle: IO[str]
    """The log file the process writes to (closed with `stop`)."""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.handle.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _wait(process: Process, ready: Any, what: str, seconds: float = 60) -> Process:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            raise AssertionError(f"{what} exited ({process.process.returncode}):\n"
                                 f"{process.output()}")
        try:
            if ready():
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.stop()
    raise AssertionError(f"{what} did not start in {seconds:g} s:\n{process.output()}")


def start_serve(home: Path, logs: Path, *, proxy_secret: str | None = PROXY_SECRET,
                extra: Mapping[str, str] | None = None) -> Process:
    """`metric-stream serve` on 127.0.0.1 (the tick loop slowed to once an hour, so only
    the Worker's cron ticks during a test)."""
    port = free_port()
    env = {**os.environ, "METRIC_STREAM_HOME": str(home), "METRIC_STREAM_ADMIN_KEY": ADMIN_KEY,
           "METRIC_STREAM_INGESTION_KEY": INGEST_KEY, **(extra or {})}
    if proxy_secret:
        env["METRIC_STREAM_PROXY_SECRET"] = proxy_secret
    log = logs / f"serve-{port}.log"
    handle = log.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "metric_stream.cli.main", "serve", "--port", str(port),
         "--workers", "1", "--tick-seconds", "3600"],
        env=env, stdout=handle, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    # in proxy mode an unsigned health check is refused (403): either answer means "up"
    return _wait(Process(url, process, log, handle),
                 lambda: httpx.get(f"{url}/api/health", timeout=1).status_code in (200, 403),
                 "metric-stream serve")


def wrangler_binary() -> Path:
    """wrangler from wrangler/node_modules, installed (`npm ci`) on first use."""
    binary = WRANGLER_DIR / "node_modules" / ".bin" / "wrangler"
    if not binary.exists():
        npm = shutil.which("npm")
        assert npm is not None, "npm is needed for the Worker tests (Node 20 with npm)"
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=WRANGLER_DIR,
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"npm ci in wrangler/ failed:\n{done.stderr[-3000:]}"
    return binary


def start_worker(upstream: str, logs: Path, variables: Mapping[str, str]) -> Process:
    """`wrangler dev` of the Worker on 127.0.0.1 (no account, no network), with
    `--test-scheduled` so `/__scheduled` runs its cron handler."""
    port = free_port()
    options = [f"--var={k}:{v}" for k, v in {"UPSTREAM_URL": upstream, **variables}.items()]
    log = logs / f"wrangler-{port}.log"
    handle = log.open("w")
    env = {**os.environ, "WRANGLER_SEND_METRICS": "false", "CLOUDFLARE_CF_FETCH_ENABLED": "false",
           "WRANGLER_LOG_PATH": str(logs), "NO_COLOR": "1",
           "XDG_CONFIG_HOME": str(logs / "xdg")}
    process = subprocess.Popen(
        [str(wrangler_binary()), "dev", "--ip", "127.0.0.1", "--port", str(port),
         "--inspector-port", str(free_port()), "--test-scheduled", "--log-level", "warn",
         *options],
        cwd=WRANGLER_DIR, env=env, stdout=handle, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    return _wait(Process(url, process, log, handle),
                 lambda: httpx.get(f"{url}/__worker_ready", timeout=2).status_code > 0,
                 "wrangler dev", seconds=90)
