import assert from "node:assert/strict";
import { before, test } from "node:test";

import { AccessKey, Clock, World, b64url, errorOf, makeEnv, makeWorker, request } from "./fakes.js";

let key;
let otherKey;

before(async () => {
  key = await AccessKey.generate("key-1");
  otherKey = await AccessKey.generate("key-2");
});

function world() {
  return new World({ jwks: { keys: [key.jwk] } });
}

function admin(token, headers = {}) {
  return request("/api/kpis", {
    headers: token ? { "cf-access-jwt-assertion": token, ...headers } : headers,
  });
}

async function refused(answer, token) {
  assert.equal(answer.status, 403);
  const text = await answer.clone().text();
  if (token) {
    assert.ok(!text.includes(token), "the token is echoed");
    const signature = token.split(".")[2];
    if (signature) assert.ok(!text.includes(signature), "the signature is echoed");
  }
  const error = await errorOf(answer);
  assert.equal(error.code, "forbidden");
  return error.message;
}

test("an admin route without an Access token is a 403 asking for a login", async () => {
  const outside = world();
  const message = await refused(await makeWorker(outside).fetch(admin(), makeEnv()));
  assert.match(message, /Cloudflare Access login is required/);
  assert.equal(outside.upstreamCalls.length, 0);
});

test("every path that is not public or ingestion is admin, POST /api/tick included", async () => {
  const outside = world();
  const proxy = makeWorker(outside);
  for (const [method, path] of [
    ["POST", "/api/tick"],
    ["GET", "/api/kpi-data"],
    ["POST", "/api/health"],
    ["GET", "/api/health/"],
    ["DELETE", "/api/kpis/btc"],
    ["GET", "/api/"],
  ]) {
    const answer = await proxy.fetch(request(path, { method }), makeEnv());
    assert.equal(answer.status, 403, `${method} ${path}`);
  }
  assert.equal(outside.upstreamCalls.length, 0);
});

test("a valid Access token from the JWKS lets an admin call through", async () => {
  const outside = world();
  const token = await key.token();
  const answer = await makeWorker(outside).fetch(admin(token), makeEnv());
  assert.equal(answer.status, 200);
  assert.equal(outside.upstreamCalls.length, 1);
  assert.equal(outside.upstreamCalls[0].headers.get("cf-access-jwt-assertion"), null);
});

test("the CF_Authorization cookie works as well as the header", async () => {
  const outside = world();
  const token = await key.token();
  const answer = await makeWorker(outside).fetch(
    request("/api/kpis", { headers: { cookie: `a=1; CF_Authorization=${token}` } }),
    makeEnv(),
  );
  assert.equal(answer.status, 200);
  assert.equal(outside.upstreamCalls[0].headers.get("cookie"), "a=1");
});

test("an aud list containing ours passes; a plain-string aud too", async () => {
  for (const aud of [["other-app", "metric-stream-access-aud"], "metric-stream-access-aud"]) {
    const answer = await makeWorker(world()).fetch(admin(await key.token({ claims: { aud } })), makeEnv());
    assert.equal(answer.status, 200, JSON.stringify(aud));
  }
});

test("exp and nbf are checked with 60 s of leeway", async () => {
  const now = Math.floor(Date.now() / 1000);
  const cases = [
    [{ exp: now - 30 }, 200],
    [{ exp: now - 120 }, 403],
    [{ nbf: now + 30 }, 200],
    [{ nbf: now + 120 }, 403],
  ];
  for (const [claims, status] of cases) {
    const answer = await makeWorker(world()).fetch(admin(await key.token({ claims })), makeEnv());
    assert.equal(answer.status, status, JSON.stringify(claims));
  }
});

test("bad tokens are refused with a general reason and never echoed", async () => {
  const now = Math.floor(Date.now() / 1000);
  const [head, body] = (await key.token()).split(".");
  const cases = {
    expired: [await key.token({ claims: { exp: now - 3600 } }), /has expired/],
    "no exp": [await key.token({ claims: { exp: undefined } }), /has expired/],
    "wrong audience": [await key.token({ claims: { aud: ["another-app"] } }), /not for this application/],
    "wrong issuer": [
      await key.token({ claims: { iss: "https://someone-else.cloudflareaccess.com" } }),
      /another Access team/,
    ],
    "another key, same kid": [await new AccessKey("key-1", otherKey.privateKey, key.jwk).token(), /not valid/],
    "unknown kid": [await otherKey.token(), /not valid/],
    "tampered claims": [
      `${head}.${b64url(JSON.stringify({ aud: ["metric-stream-access-aud"], exp: now + 600, sub: "admin" }))}.${(await key.token()).split(".")[2]}`,
      /not valid/,
    ],
    "alg other than RS256": [await key.token({ header: { alg: "RS512" } }), /not valid/],
    "alg none": [`${b64url(JSON.stringify({ alg: "none", kid: "key-1" }))}.${body}.`, /not valid/],
    "garbage": ["not-a-jwt", /not valid/],
    "bad base64": ["%%%.###.@@@", /not valid/],
  };
  for (const [problem, [token, reason]] of Object.entries(cases)) {
    const message = await refused(await makeWorker(world()).fetch(admin(token), makeEnv()), token);
    assert.match(message, reason, problem);
  }
});

test("HS256 signed with the public key as secret is refused (algorithm pinned)", async () => {
  const header = b64url(JSON.stringify({ alg: "HS256", kid: "key-1", typ: "JWT" }));
  const body = b64url(JSON.stringify({ aud: ["metric-stream-access-aud"], exp: Math.floor(Date.now() / 1000) + 600 }));
  const secret = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(JSON.stringify(key.jwk)),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", secret, new TextEncoder().encode(`${header}.${body}`));
  const token = `${header}.${body}.${b64url(mac)}`;
  await refused(await makeWorker(world()).fetch(admin(token), makeEnv()), token);
});

test("the issuer is not checked when ACCESS_ISSUER is unset", async () => {
  const token = await key.token({ claims: { iss: "https://anyone.cloudflareaccess.com" } });
  const answer = await makeWorker(world()).fetch(admin(token), makeEnv({ ACCESS_ISSUER: undefined }));
  assert.equal(answer.status, 200);
});

test("the JWKS is fetched once and kept for ACCESS_JWKS_TTL_S", async () => {
  const outside = world();
  const clock = new Clock();
  const proxy = makeWorker(outside, clock);
  const env = makeEnv({ ACCESS_JWKS_TTL_S: "600" });
  for (let i = 0; i < 3; i += 1) assert.equal((await proxy.fetch(admin(await key.token()), env)).status, 200);
  assert.equal(outside.jwksCalls.length, 1);
  clock.advance(601);
  assert.equal((await proxy.fetch(admin(await key.token()), env)).status, 200);
  assert.equal(outside.jwksCalls.length, 2);
});

test("an unknown kid refetches the JWKS once, which picks up a rotated key", async () => {
  const outside = world();
  const clock = new Clock();
  const proxy = makeWorker(outside, clock);
  assert.equal((await proxy.fetch(admin(await key.token()), makeEnv())).status, 200);
  outside.jwks = { keys: [key.jwk, otherKey.jwk] }; // Access rotates a key in
  clock.advance(30);
  assert.equal((await proxy.fetch(admin(await otherKey.token()), makeEnv())).status, 200);
  assert.equal(outside.jwksCalls.length, 2);
  const stranger = await AccessKey.generate("key-3");
  clock.advance(30);
  await refused(await proxy.fetch(admin(await stranger.token()), makeEnv()));
  assert.equal(outside.jwksCalls.length, 3, "one refetch for the unknown kid, not more");
  // made-up kids in quick succession do not each cost a JWKS fetch
  for (let i = 0; i < 5; i += 1) await refused(await proxy.fetch(admin(await stranger.token()), makeEnv()));
  assert.equal(outside.jwksCalls.length, 3);
});

test("a JWKS that cannot be fetched is a 503, not a 403", async () => {
  for (const failure of ["network", 500, 404]) {
    const outside = world();
    outside.jwksFailure = failure;
    const answer = await makeWorker(outside).fetch(admin(await key.token()), makeEnv());
    assert.equal(answer.status, 503, String(failure));
    assert.equal((await errorOf(answer)).code, "unavailable");
    assert.equal(outside.upstreamCalls.length, 0);
  }
  const outside = new World({ jwks: { not: "a jwks" } });
  assert.equal((await makeWorker(outside).fetch(admin(await key.token()), makeEnv())).status, 503);
});

test("without ACCESS_JWKS_URL admin routes are refused, unless ACCESS_DISABLED=true", async () => {
  const outside = world();
  const unset = makeEnv({ ACCESS_JWKS_URL: undefined });
  const message = await refused(await makeWorker(outside).fetch(admin(await key.token()), unset));
  assert.match(message, /not configured/);
  const disabled = makeEnv({ ACCESS_JWKS_URL: undefined, ACCESS_DISABLED: "true", ADMIN_KEY: "k" });
  const answer = await makeWorker(outside).fetch(admin(), disabled);
  assert.equal(answer.status, 200);
  assert.equal(outside.upstreamCalls[0].headers.get("authorization"), null, "no Access, no admin key");
});

test("ACCESS_DISABLED does not switch off a configured Access", async () => {
  const answer = await makeWorker(world()).fetch(admin(), makeEnv({ ACCESS_DISABLED: "true" }));
  assert.equal(answer.status, 403);
});

test("without ACCESS_AUD a configured Access is a configuration error", async () => {
  const answer = await makeWorker(world()).fetch(admin(await key.token()), makeEnv({ ACCESS_AUD: undefined }));
  assert.equal(answer.status, 500);
  assert.equal((await errorOf(answer)).code, "configuration_error");
});

test("after Access, ADMIN_KEY stands in for a missing Authorization header", async () => {
  const outside = world();
  const proxy = makeWorker(outside);
  const env = makeEnv({ ADMIN_KEY: "the-admin-key" });
  await proxy.fetch(admin(await key.token()), env);
  await proxy.fetch(admin(await key.token(), { authorization: "Bearer own-key" }), env);
  await proxy.fetch(request("/api/health"), env);
  const [person, script, anyone] = outside.upstreamCalls.map((r) => r.headers.get("authorization"));
  assert.equal(person, "Bearer the-admin-key");
  assert.equal(script, "Bearer own-key");
  assert.equal(anyone, null, "public routes never get the admin key");
});

test("public and ingestion routes need no Access token", async () => {
  const outside = world();
  const proxy = makeWorker(outside);
  for (const [method, path] of [
    ["GET", "/api/health"],
    ["GET", "/api/charts/health"],
    ["GET", "/api/openapi.json"],
    ["POST", "/api/kpi-data"],
    ["POST", "/api/kpi-error"],
  ]) {
    const answer = await proxy.fetch(request(path, { method, body: method === "POST" ? "{}" : undefined }), makeEnv());
    assert.equal(answer.status, 200, `${method} ${path}`);
  }
  assert.equal(outside.jwksCalls.length, 0);
});
