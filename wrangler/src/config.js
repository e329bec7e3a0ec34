/**
 * The Worker's settings, read once per request from `env` (vars from wrangler.toml or
 * `--var`, secrets from `wrangler secret put` or `.dev.vars`). Everything arrives as text;
 * a variable left empty counts as unset.
 */

import { ProxyError } from "./errors.js";

const DEFAULTS = {
  MAX_BODY_BYTES: 10 * 1024 * 1024,
  UPSTREAM_TIMEOUT_MS: 25_000,
  ACCESS_JWKS_TTL_S: 600,
  RATE_LIMIT_PER_MINUTE: 120,
};

function text(env, name) {
  const value = env[name];
  return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
}

function wholeNumber(env, name) {
  const value = text(env, name);
  if (value === undefined) return DEFAULTS[name];
  if (!/^\d+$/.test(value)) {
    throw new ProxyError("configuration_error", `${name} must be a whole number, not "${value}"`);
  }
  return Number(value);
}

function proxySecret(env) {
  const secret = text(env, "PROXY_SECRET");
  if (secret === undefined) {
    throw new ProxyError(
      "configuration_error",
      "the proxy's PROXY_SECRET is not set: refusing to forward unsigned requests",
    );
  }
  return secret;
}

/** `env.UPSTREAM_URL` without a trailing slash, so its base path (`/prod`) is kept. */
function upstreamBase(env) {
  const url = text(env, "UPSTREAM_URL");
  if (url === undefined || !/^https?:\/\//.test(url)) {
    throw new ProxyError("configuration_error", "UPSTREAM_URL is not set to an http(s) URL");
  }
  return url.replace(/\/+$/, "");
}

export function settingsFrom(env) {
  return {
    secret: proxySecret(env),
    upstream: upstreamBase(env),
    maxBodyBytes: wholeNumber(env, "MAX_BODY_BYTES"),
    upstreamTimeoutMs: wholeNumber(env, "UPSTREAM_TIMEOUT_MS"),
    adminKey: text(env, "ADMIN_KEY"),
    access: {
      jwksUrl: text(env, "ACCESS_JWKS_URL"),
      jwksTtlMs: wholeNumber(env, "ACCESS_JWKS_TTL_S") * 1000,
      audience: text(env, "ACCESS_AUD"),
      issuer: text(env, "ACCESS_ISSUER"),
      disabled: text(env, "ACCESS_DISABLED") === "true",
    },
    rateLimit: {
      binding: env.RATE_LIMITER,
      perMinute: wholeNumber(env, "RATE_LIMIT_PER_MINUTE"),
    },
  };
}
