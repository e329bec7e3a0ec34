/**
 * The one place where the Worker's own failures become HTTP answers.
 *
 * Every module throws a ProxyError with a code from STATUS; `errorResponse` shapes it as
 * metric-stream does ({"error": {"code", "message"}}), so a client never has to tell the
 * proxy's errors from the service's.
 *
 *   ProxyError
 *   ├── 400 bad_request          a path that cannot be percent-decoded
 *   ├── 403 forbidden            Cloudflare Access login missing or not valid
 *   ├── 404 not_found            not under /api/
 *   ├── 413 payload_too_large    body over MAX_BODY_BYTES
 *   ├── 429 rate_limited         (carries Retry-After)
 *   ├── 500 configuration_error  a secret or variable is missing or malformed
 *   ├── 500 internal_error       a bug in the Worker
 *   ├── 502 upstream_error       upstream unreachable, or a non-JSON 5xx page
 *   ├── 503 unavailable          the Access JWKS cannot be fetched
 *   └── 504 upstream_timeout     no answer within UPSTREAM_TIMEOUT_MS
 */

const STATUS = {
  bad_request: 400,
  forbidden: 403,
  not_found: 404,
  payload_too_large: 413,
  rate_limited: 429,
  configuration_error: 500,
  internal_error: 500,
  upstream_error: 502,
  unavailable: 503,
  upstream_timeout: 504,
};

export class ProxyError extends Error {
  /**
   * @param {keyof typeof STATUS} code
   * @param {string} message human text; never a token or a secret
   * @param {Record<string, string>} [headers] extra answer headers (Retry-After)
   */
  constructor(code, message, headers = {}) {
    super(message);
    if (!(code in STATUS)) throw new TypeError(`unknown error code ${code}`);
    this.name = "ProxyError";
    this.code = code;
    this.status = STATUS[code];
    this.headers = headers;
  }
}

/** The JSON answer for `error`, tagged with the request's id. */
export function errorResponse(error, requestId) {
  const body = { error: { code: error.code, message: error.message } };
  const headers = new Headers({
    "content-type": "application/json",
    "cache-control": "no-store",
    ...error.headers,
  });
  if (requestId) headers.set("x-request-id", requestId);
  return new Response(JSON.stringify(body), { status: error.status, headers });
}
