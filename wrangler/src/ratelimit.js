/**
 * Per-client limits on the routes anyone can call (public and ingestion). With the
 * Workers rate-limiting binding (`RATE_LIMITER`, shared across Cloudflare's machines)
 * when bound; otherwise a fixed one-minute window counted in this isolate, which only
 * bounds what one isolate serves but needs no binding (tests, `wrangler dev`).
 * `RATE_LIMIT_PER_MINUTE = "0"` turns both off (benchmarks).
 */

import { ProxyError } from "./errors.js";

const WINDOW_MS = 60_000;
// The binding's period (wrangler.toml `simple.period`): how long a refused client waits.
const BINDING_RETRY_AFTER_S = 60;

function refused(retryAfterS) {
  return new ProxyError(
    "rate_limited",
    `too many requests from this client: try again in ${retryAfterS} s`,
    { "retry-after": String(retryAfterS) },
  );
}

/** Counts per client key in the current minute; a new minute forgets the last one. */
export class FixedWindow {
  constructor() {
    this.window = -1;
    this.counts = new Map();
  }

  /** @returns {number} 0 when allowed, else the seconds until the window ends */
  hit(key, limit, nowMs) {
    const window = Math.floor(nowMs / WINDOW_MS);
    if (window !== this.window) {
      this.window = window;
      this.counts.clear();
    }
    const count = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, count);
    if (count <= limit) return 0;
    return Math.max(1, Math.ceil(((window + 1) * WINDOW_MS - nowMs) / 1000));
  }
}

/** Throws `rate_limited` when `key` is over its limit. */
export async function checkRateLimit(settings, key, counter, nowMs) {
  if (settings.perMinute === 0) return;
  if (settings.binding) {
    const { success } = await settings.binding.limit({ key });
    if (!success) throw refused(BINDING_RETRY_AFTER_S);
    return;
  }
  const wait = counter.hit(key, settings.perMinute, nowMs);
  if (wait > 0) throw refused(wait);
}
