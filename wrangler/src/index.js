/**
 * metric-stream's Cloudflare Worker proxy: the composition root and the two entry points.
 *
 * fetch: /api/* is guarded by route class (admin: Cloudflare Access; public and ingestion:
 * a per-client rate limit), signed with PROXY_SECRET and forwarded to UPSTREAM_URL.
 * scheduled: the cron trigger becomes a signed POST /api/tick, metric-stream's scheduler tick.
 */

import { Jwks, verifyAccess } from "./access.js";
import { readBody } from "./body.js";
import { settingsFrom } from "./config.js";
import { ProxyError, errorResponse } from "./errors.js";
import { FixedWindow, checkRateLimit } from "./ratelimit.js";
import { routeClass } from "./routes.js";
import { signatureHeaders } from "./signing.js";
import { callUpstream, forwardedHeaders, relayedResponse } from "./upstream.js";

const TICK_PATH = "/api/tick";
// A client's own id is kept for tracing only when it looks like one (it lands in logs).
const REQUEST_ID = /^[\w.:-]{1,128}$/;

function decodedPath(url) {
  try {
    return decodeURIComponent(url.pathname);
  } catch {
    throw new ProxyError("bad_request", "the request path is not valid percent-encoding");
  }
}

/**
 * A Worker whose I/O and clock are injected: `fetch` reaches upstream and the JWKS,
 * `now` gives milliseconds. Its caches (JWKS, rate-limit window) live as long as it does,
 * which for the default export is the isolate.
 */
export function createWorker({ fetch: fetcher, now = () => Date.now() }) {
  const jwks = new Jwks(fetcher, now);
  const counter = new FixedWindow();

  /** Admin routes: Access, or the local-dev escape hatch. Returns verified claims or null. */
  async function admit(request, access) {
    if (!access.jwksUrl) {
      // ACCESS_DISABLED exists for `wrangler dev` on a laptop; metric-stream still wants
      // its admin key behind it. Never set it in a deployed environment.
      if (access.disabled) return null;
      throw new ProxyError(
        "forbidden",
        "admin routes need Cloudflare Access, which is not configured on this proxy",
      );
    }
    if (!access.audience) {
      throw new ProxyError("configuration_error", "ACCESS_AUD is not set");
    }
    return verifyAccess(request.headers, access, jwks, now());
  }

  async function forward(request, env, requestId) {
    const settings = settingsFrom(env);
    const url = new URL(request.url);
    const path = decodedPath(url);
    const route = routeClass(request.method, path);
    if (route === null) throw new ProxyError("not_found", "this proxy serves only /api/ paths");

    let claims = null;
    if (route === "admin") {
      claims = await admit(request, settings.access);
    } else {
      const client = request.headers.get("cf-connecting-ip") ?? "anonymous";
      await checkRateLimit(settings.rateLimit, client, counter, now());
    }

    const body = await readBody(request, settings.maxBodyBytes);
    const signature = await signatureHeaders(settings.secret, now(), {
      origin: "forward",
      method: request.method,
      path,
      query: url.searchParams,
      body,
    });
    const headers = forwardedHeaders(request.headers, { requestId, signature });
    // Access login stands in for the admin key for people; a client's own key wins.
    if (claims && settings.adminKey && !headers.has("authorization")) {
      headers.set("authorization", `Bearer ${settings.adminKey}`);
    }
    const hasBody = request.method !== "GET" && request.method !== "HEAD";
    const upstream = await callUpstream(
      fetcher,
      settings.upstream + url.pathname + url.search,
      { method: request.method, headers, body: hasBody ? body : undefined },
      settings.upstreamTimeoutMs,
    );
    return relayedResponse(upstream, requestId);
  }

  return {
    async fetch(request, env) {
      const given = request.headers.get("x-request-id");
      const requestId = given && REQUEST_ID.test(given) ? given : crypto.randomUUID();
      try {
        return await forward(request, env, requestId);
      } catch (error) {
        if (error instanceof ProxyError) return errorResponse(error, requestId);
        console.error(`request ${requestId} failed: ${error?.stack ?? error}`);
        return errorResponse(
          new ProxyError("internal_error", "the proxy failed on this request"),
          requestId,
        );
      }
    },

    /** Never throws: a failed tick is logged, and the next minute's tick tries again. */
    async scheduled(event, env) {
      try {
        const settings = settingsFrom(env);
        const body = new Uint8Array(0);
        const signature = await signatureHeaders(settings.secret, now(), {
          origin: "cron",
          method: "POST",
          path: TICK_PATH,
          query: "",
          body,
        });
        const requestId = crypto.randomUUID();
        const answer = await callUpstream(
          fetcher,
          settings.upstream + TICK_PATH,
          { method: "POST", headers: { ...signature, "x-request-id": requestId }, body },
          settings.upstreamTimeoutMs,
        );
        const line = `tick (${event.cron}) ${requestId}: upstream answered ${answer.status}`;
        if (answer.ok) {
          console.log(line);
          await answer.body?.cancel();
        } else {
          console.error(`${line}: ${(await answer.text()).slice(0, 500)}`);
        }
      } catch (error) {
        console.error(`tick (${event?.cron}) failed: ${error?.message ?? error}`);
      }
    },
  };
}

export default createWorker({ fetch: (...args) => fetch(...args) });
