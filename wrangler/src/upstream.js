/**
 * Talking to metric-stream: the request as it leaves the proxy (client headers cleaned,
 * signature added), the call with its deadline, and the answer passed back as a stream
 * unless it is an error page that is not ours to show.
 */

import { cookieWithoutToken } from "./access.js";
import { ProxyError } from "./errors.js";

// Per-connection headers (RFC 9110 §7.6.1): they describe one hop, not the message.
const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
];

function withoutHopByHop(source) {
  const headers = new Headers(source);
  const named = (headers.get("connection") ?? "").split(",").map((h) => h.trim());
  for (const name of [...HOP_BY_HOP, ...named]) if (name) headers.delete(name);
  return headers;
}

/**
 * The headers sent upstream: the client's, less what only the proxy may say (a client
 * must not bring its own signature headers, nor pass its Access token on), plus who asked.
 */
export function forwardedHeaders(clientHeaders, { requestId, signature }) {
  const headers = withoutHopByHop(clientHeaders);
  for (const name of [...headers.keys()]) {
    if (name.startsWith("x-metric-stream-proxy-")) headers.delete(name);
  }
  headers.delete("cf-access-jwt-assertion");
  headers.delete("host"); // fetch sets the upstream's
  headers.delete("content-length"); // fetch sets it from the buffered body
  const cookie = headers.get("cookie");
  if (cookie !== null) {
    const kept = cookieWithoutToken(cookie);
    if (kept) headers.set("cookie", kept);
    else headers.delete("cookie");
  }
  // Only Cloudflare's view of the client is trusted; a client-sent X-Forwarded-For is not.
  headers.delete("x-forwarded-for");
  const client = clientHeaders.get("cf-connecting-ip");
  if (client) headers.set("x-forwarded-for", client);
  headers.set("x-request-id", requestId);
  for (const [name, value] of Object.entries(signature)) headers.set(name, value);
  return headers;
}

/**
 * `fetcher(url, init)` with a deadline on the answer's headers (not on streaming the
 * body after them). Network failures and the deadline become our JSON errors.
 */
export async function callUpstream(fetcher, url, init, timeoutMs) {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  try {
    return await fetcher(url, { ...init, redirect: "manual", signal: controller.signal });
  } catch (error) {
    if (timedOut) {
      throw new ProxyError(
        "upstream_timeout",
        `the upstream metric-stream did not answer within ${timeoutMs} ms`,
      );
    }
    console.error(`upstream fetch failed: ${error?.message ?? error}`);
    throw new ProxyError("upstream_error", "the upstream metric-stream cannot be reached");
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The answer to pass back. metric-stream's own errors are JSON; a 5xx in anything else
 * is a gateway's or a crashed server's page, which the client gets as our JSON instead.
 */
export async function relayedResponse(upstream, requestId) {
  const type = upstream.headers.get("content-type") ?? "";
  if (upstream.status >= 500 && !/\bjson\b/i.test(type)) {
    await upstream.body?.cancel();
    throw new ProxyError(
      "upstream_error",
      `the upstream metric-stream failed with HTTP ${upstream.status} and no JSON error`,
    );
  }
  const headers = withoutHopByHop(upstream.headers);
  if (!headers.has("x-request-id")) headers.set("x-request-id", requestId);
  return new Response(upstream.body, {
    status: upstream.status,
    statusText: upstream.statusText,
    headers,
  });
}
