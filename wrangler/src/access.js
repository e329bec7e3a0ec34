/**
 * Cloudflare Access in front of the admin routes: the JWT that Access puts on each
 * request it let through (header `Cf-Access-Jwt-Assertion`, or the `CF_Authorization`
 * cookie) is checked here too, so the admin routes stay closed even when the Worker is
 * reached another way (workers.dev, a route Access does not cover).
 *
 * RS256 only; the key is the one with the token's `kid` in the team's JWKS
 * (https://<team>.cloudflareaccess.com/cdn-cgi/access/certs), cached per isolate.
 * Messages say what is wrong in general terms and never quote the token.
 */

import { ProxyError } from "./errors.js";

const LEEWAY_S = 60;
// Access rotates its keys with overlap, so an unknown kid is rare; refetching at most
// this often keeps tokens with made-up kids from turning into a JWKS fetch each.
const REFETCH_COOLDOWN_MS = 10_000;
const RS256 = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };

const decoder = new TextDecoder();
const encoder = new TextEncoder();

function forbidden(message) {
  return new ProxyError("forbidden", message);
}

const INVALID = "the Access token is not valid";

function base64url(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function jsonPart(text) {
  const value = JSON.parse(decoder.decode(base64url(text)));
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new TypeError();
  return value;
}

/** The token from the header, else from the cookie Access sets in browsers. */
export function accessToken(headers) {
  const header = headers.get("cf-access-jwt-assertion");
  if (header) return header.trim();
  for (const part of (headers.get("cookie") ?? "").split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === "CF_Authorization") return value.join("=");
  }
  return undefined;
}

/** The Cookie header without `CF_Authorization` (upstream has no use for the token). */
export function cookieWithoutToken(cookie) {
  return cookie
    .split(";")
    .map((part) => part.trim())
    .filter((part) => part !== "" && !part.startsWith("CF_Authorization="))
    .join("; ");
}

/** The JWKS of one Access team, fetched on demand and kept for `ttlMs`. */
export class Jwks {
  constructor(fetcher, now) {
    this.fetcher = fetcher;
    this.now = now;
    this.url = undefined;
    this.keys = new Map();
    this.fetchedAt = -Infinity;
    this.pending = undefined;
  }

  /** The key for `kid`, or undefined when the team has no such key. */
  async key(url, kid, ttlMs) {
    const age = this.now() - this.fetchedAt;
    if (url !== this.url || age > ttlMs) {
      await this.refresh(url);
    } else if (!this.keys.has(kid) && age > REFETCH_COOLDOWN_MS) {
      await this.refresh(url); // perhaps a key Access rotated in since
    }
    return this.keys.get(kid);
  }

  /** One fetch at a time: concurrent requests share it. */
  refresh(url) {
    this.pending ??= this.load(url).finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  async load(url) {
    let document;
    try {
      const answer = await this.fetcher(url, { headers: { accept: "application/json" } });
      if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
      document = await answer.json();
      if (!Array.isArray(document?.keys)) throw new Error("no keys array");
    } catch (error) {
      console.error(`Access JWKS fetch failed: ${error.message}`);
      throw new ProxyError(
        "unavailable",
        "the Cloudflare Access keys cannot be fetched right now: try again shortly",
      );
    }
    const keys = new Map();
    for (const jwk of document.keys) {
      if (jwk?.kty !== "RSA" || typeof jwk.kid !== "string") continue;
      if (jwk.alg !== undefined && jwk.alg !== "RS256") continue;
      try {
        const material = { kty: "RSA", n: jwk.n, e: jwk.e };
        keys.set(jwk.kid, await crypto.subtle.importKey("jwk", material, RS256, false, ["verify"]));
      } catch {
        console.error(`Access JWKS: key ${jwk.kid} cannot be imported; skipped`);
      }
    }
    this.url = url;
    this.keys = keys;
    this.fetchedAt = this.now();
  }
}

/**
 * The verified claims of the request's Access token.
 *
 * @param {Headers} headers
 * @param {{jwksUrl: string, jwksTtlMs: number, audience: string, issuer?: string}} settings
 * @param {Jwks} jwks
 * @param {number} nowMs
 */
export async function verifyAccess(headers, settings, jwks, nowMs) {
  const token = accessToken(headers);
  if (!token) throw forbidden("a Cloudflare Access login is required");

  const parts = token.split(".");
  if (parts.length !== 3) throw forbidden(INVALID);
  let header;
  let claims;
  let signature;
  try {
    header = jsonPart(parts[0]);
    claims = jsonPart(parts[1]);
    signature = base64url(parts[2]);
  } catch {
    throw forbidden(INVALID);
  }
  // Pinning the algorithm is what stops `none` and HS256-with-the-public-key tokens.
  if (header.alg !== "RS256" || typeof header.kid !== "string") throw forbidden(INVALID);

  const key = await jwks.key(settings.jwksUrl, header.kid, settings.jwksTtlMs);
  if (!key) throw forbidden(INVALID);
  const signed = encoder.encode(`${parts[0]}.${parts[1]}`);
  if (!(await crypto.subtle.verify(RS256, key, signature, signed))) throw forbidden(INVALID);

  const now = nowMs / 1000;
  if (typeof claims.exp !== "number" || now > claims.exp + LEEWAY_S) {
    throw forbidden("the Access token has expired: log in again");
  }
  if (typeof claims.nbf === "number" && now < claims.nbf - LEEWAY_S) {
    throw forbidden("the Access token is not valid yet");
  }
  const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!audiences.includes(settings.audience)) {
    throw forbidden("the Access token is not for this application");
  }
  if (settings.issuer !== undefined && claims.iss !== settings.issuer) {
    throw forbidden("the Access token was issued by another Access team");
  }
  return claims;
}
