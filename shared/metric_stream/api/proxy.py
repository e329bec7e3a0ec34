"""The signature the Cloudflare Worker proxy (`wrangler/`) puts on every request it
forwards, and on its own cron ticks. With `METRIC_STREAM_PROXY_SECRET` set, metric-stream
sits behind the proxy and refuses any request that does not carry a valid one.

Headers: `x-metric-stream-proxy-timestamp` (unix seconds), `x-metric-stream-proxy-origin`
(`forward`: a client's request; `cron`: the Worker's own tick) and
`x-metric-stream-proxy-signature: v1=<hex HMAC-SHA256>` over the lines

    v1, timestamp, origin, METHOD, path, canonical query, sha256 hex of the body

joined with "\\n". The path is the decoded path the client asked for (`/api/kpis/btc`,
whatever base path the upstream has); the canonical query is each `key=value` pair
encoded as JavaScript's `encodeURIComponent` does, sorted, joined with `&`; pairs with
an empty value are left out (the servers' query parsers drop them).
`wrangler/test/vectors.json` holds a vector both sides are tested against.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Literal
from urllib.parse import quote

from pydantic import SecretStr

TIMESTAMP = "x-metric-stream-proxy-timestamp"
ORIGIN = "x-metric-stream-proxy-origin"
SIGNATURE = "x-metric-stream-proxy-signature"
TOLERANCE_S = 5 * 60
Origin = Literal["forward", "cron"]
ORIGINS: tuple[Origin, ...] = ("forward", "cron")

# What encodeURIComponent leaves as it is, besides letters and digits.
_UNRESERVED = "-_.!~*'()"


def canonical_query(query: Mapping[str, str]) -> str:
    pairs = [f"{quote(k, safe=_UNRESERVED)}={quote(v, safe=_UNRESERVED)}"
             for k, v in query.items() if v != ""]
    return "&".join(sorted(pairs))


def proxy_signature(secret: str, timestamp: str, origin: str, method: str, path: str,
                    query: Mapping[str, str], body: bytes) -> str:
    """The `x-metric-stream-proxy-signature` value of a request."""
    text = "\n".join(["v1", timestamp, origin, method.upper(), path, canonical_query(query),
                      hashlib.sha256(body).hexdigest()])
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return f"v1={digest}"


def verified_origin(secret: SecretStr, method: str, path: str, query: Mapping[str, str],
                    headers: Mapping[str, str], body: bytes, *,
                    now: float | None = None) -> Origin | None:
    """The request's origin if it carries a valid, fresh proxy signature; else None.
    `headers` has lower-case names."""
    stamp = headers.get(TIMESTAMP, "")
    origin = headers.get(ORIGIN, "")
    given = headers.get(SIGNATURE, "")
    if not stamp.isdigit() or origin not in ORIGINS or not given:
        return None
    if abs((time.time() if now is None else now) - int(stamp)) > TOLERANCE_S:
        return None
    expected = proxy_signature(secret.get_secret_value(), stamp, origin, method, path,
                               query, body)
    if not hmac.compare_digest(expected.encode(), given.strip().encode()):
        return None
    return "cron" if origin == "cron" else "forward"
