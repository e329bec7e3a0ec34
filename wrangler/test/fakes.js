/**
 * Test doubles for the Worker's I/O: an upstream and a Cloudflare Access team, both
 * answering through the `fetch` the Worker is built with, and a clock tests can move.
 * No network: anything else the Worker fetches fails the test.
 */

import { createWorker } from "../src/index.js";

export const SECRET = "proxy-secret-for-the-tests";
export const AUDIENCE = "metric-stream-access-aud";
export const ISSUER = "https://metric-stream-team.cloudflareaccess.com";
export const JWKS_URL = `${ISSUER}/cdn-cgi/access/certs`;
export const UPSTREAM = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod";

const RS256 = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };

export function b64url(bytes) {
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : new Uint8Array(bytes);
  return btoa(String.fromCharCode(...data)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** An Access signing key: its JWKS entry, and tokens it signs. */
export class AccessKey {
  static async generate(kid = "test-key-1") {
    const pair = await crypto.subtle.generateKey(
      { ...RS256, modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) },
      true,
      ["sign", "verify"],
    );
    const { n, e } = await crypto.subtle.exportKey("jwk", pair.publicKey);
    return new AccessKey(kid, pair.privateKey, { kty: "RSA", alg: "RS256", use: "sig", kid, n, e });
  }

  constructor(kid, privateKey, jwk) {
    this.kid = kid;
    this.privateKey = privateKey;
    this.jwk = jwk;
  }

  /** A token as Access issues it, with `claims` and `header` overriding the defaults. */
  async token({ claims = {}, header = {} } = {}) {
    const now = Math.floor(Date.now() / 1000);
    const head = b64url(JSON.stringify({ alg: "RS256", kid: this.kid, typ: "JWT", ...header }));
    const body = b64url(
      JSON.stringify({
        aud: [AUDIENCE],
        iss: ISSUER,
        iat: now - 5,
        nbf: now - 5,
        exp: now + 600,
        sub: "operator-1",
        email: "operator@example.com",
        ...claims,
      }),
    );
    const signature = await crypto.subtle.sign(RS256, this.privateKey, new TextEncoder().encode(`${head}.${body}`));
    return `${head}.${body}.${b64url(signature)}`;
  }
}

/**
 * The outside world as the Worker sees it: the JWKS at JWKS_URL (`jwks`, swappable;
 * `jwksFailure` makes it fail) and an upstream answering with `upstream(request)`.
 * Every call is kept in `calls` as a Request.
 */
export class World {
  constructor({ jwks = { keys: [] }, upstream } = {}) {
    this.jwks = jwks;
    this.jwksFailure = undefined;
    this.upstream = upstream ?? (() => Response.json({ ok: true }));
    this.calls = [];
    this.fetch = this.fetch.bind(this);
  }

  async fetch(url, init = {}) {
    const request = new Request(url, init);
    this.calls.push(request);
    if (request.url === JWKS_URL) {
      if (this.jwksFailure === "network") throw new TypeError("fetch failed");
      if (this.jwksFailure) return new Response("oops", { status: this.jwksFailure });
      return Response.json(this.jwks);
    }
    if (request.url.startsWith(UPSTREAM)) return this.upstream(request, init);
    throw new Error(`the test did not expect a fetch of ${request.url}`);
  }

  get upstreamCalls() {
    return this.calls.filter((r) => r.url.startsWith(UPSTREAM));
  }

  get jwksCalls() {
    return this.calls.filter((r) => r.url === JWKS_URL);
  }
}

/** A clock that moves only when told to. */
export class Clock {
  constructor(ms = Date.now()) {
    this.ms = ms;
    this.now = () => this.ms;
  }

  advance(seconds) {
    this.ms += seconds * 1000;
  }
}

/** The Worker's env: a deployed-like configuration, with `overrides` (undefined removes). */
export function makeEnv(overrides = {}) {
  const env = {
    UPSTREAM_URL: UPSTREAM,
    PROXY_SECRET: SECRET,
    UPSTREAM_TIMEOUT_MS: "25000",
    MAX_BODY_BYTES: "10485760",
    RATE_LIMIT_PER_MINUTE: "0",
    ACCESS_JWKS_URL: JWKS_URL,
    ACCESS_AUD: AUDIENCE,
    ACCESS_ISSUER: ISSUER,
    ACCESS_JWKS_TTL_S: "600",
    ...overrides,
  };
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete env[name];
  return env;
}

/** A fresh Worker (fresh caches) over `world`, with an optional clock. */
export function makeWorker(world, clock) {
  return createWorker({ fetch: world.fetch, ...(clock ? { now: clock.now } : {}) });
}

export function request(path, init = {}) {
  return new Request(`https://proxy.example.com${path}`, init);
}

/** The JSON error of a Worker answer (asserting it is one). */
export async function errorOf(response) {
  const type = response.headers.get("content-type") ?? "";
  if (!type.startsWith("application/json")) throw new Error(`not JSON: ${type}`);
  return (await response.json()).error;
}
