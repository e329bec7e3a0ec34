/**
 * The proxy signature metric-stream checks in proxy mode (`metric_stream/api/proxy.py`
 * is its Python twin; `test/vectors.json` holds a vector both sides test against).
 *
 *   S = ["v1", timestamp, origin, METHOD, path, canonicalQuery, sha256hex(body)].join("\n")
 *   x-metric-stream-proxy-signature: v1=<hex HMAC-SHA256(secret, S)>
 */

export const TIMESTAMP = "x-metric-stream-proxy-timestamp";
export const ORIGIN = "x-metric-stream-proxy-origin";
export const SIGNATURE = "x-metric-stream-proxy-signature";

const encoder = new TextEncoder();

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** @param {Uint8Array | ArrayBuffer | string} body */
export async function sha256Hex(body) {
  const bytes = typeof body === "string" ? encoder.encode(body) : body;
  return hex(await crypto.subtle.digest("SHA-256", bytes));
}

/**
 * The query as the servers parse it, canonically: metric-stream reads the query into a
 * dict (Python's `dict(parse_qsl(...))`, API Gateway's `queryStringParameters`), which
 * drops empty values and keeps the last of a repeated key. Signing the same view is
 * what lets both sides agree.
 *
 * @param {URLSearchParams | Record<string, string> | string} query
 */
export function canonicalQuery(query) {
  const pairs = new Map();
  for (const [key, value] of new URLSearchParams(query)) {
    if (value !== "") pairs.set(key, value);
  }
  return Array.from(pairs, ([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .sort()
    .join("&");
}

/**
 * The `x-metric-stream-proxy-signature` value for one request.
 *
 * @param {string} secret
 * @param {{timestamp: string, origin: "forward" | "cron", method: string, path: string,
 *          query: URLSearchParams | Record<string, string> | string,
 *          body: Uint8Array | ArrayBuffer | string}} request path: decoded, without the
 *          upstream's base path
 */
export async function proxySignature(secret, { timestamp, origin, method, path, query, body }) {
  const text = [
    "v1",
    timestamp,
    origin,
    method.toUpperCase(),
    path,
    canonicalQuery(query),
    await sha256Hex(body),
  ].join("\n");
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return `v1=${hex(await crypto.subtle.sign("HMAC", key, encoder.encode(text)))}`;
}

/** The three headers that sign a request made at `nowMs`. */
export async function signatureHeaders(secret, nowMs, request) {
  const timestamp = String(Math.floor(nowMs / 1000));
  return {
    [TIMESTAMP]: timestamp,
    [ORIGIN]: request.origin,
    [SIGNATURE]: await proxySignature(secret, { ...request, timestamp }),
  };
}
