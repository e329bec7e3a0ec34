import assert from "node:assert/strict";
import { test } from "node:test";

import { Clock, World, errorOf, makeEnv, makeWorker, request } from "./fakes.js";

const ENV = { ACCESS_JWKS_URL: undefined, ACCESS_DISABLED: "true" };

function from(ip, path = "/api/health", method = "GET") {
  return request(path, { method, headers: ip ? { "cf-connecting-ip": ip } : {} });
}

test("over RATE_LIMIT_PER_MINUTE a client gets a JSON 429 with Retry-After", async () => {
  const outside = new World();
  const clock = new Clock(Date.UTC(2026, 11, 5, 8, 0, 15));
  const proxy = makeWorker(outside, clock);
  const env = makeEnv({ ...ENV, RATE_LIMIT_PER_MINUTE: "2" });
  assert.equal((await proxy.fetch(from("203.0.113.1"), env)).status, 200);
  assert.equal((await proxy.fetch(from("203.0.113.1", "/api/kpi-data", "POST"), env)).status, 200);
  const answer = await proxy.fetch(from("203.0.113.1"), env);
  assert.equal(answer.status, 429);
  assert.equal(answer.headers.get("retry-after"), "45");
  assert.ok(answer.headers.get("x-request-id"));
  assert.equal((await errorOf(answer)).code, "rate_limited");
  assert.equal(outside.upstreamCalls.length, 2);

  assert.equal((await proxy.fetch(from("203.0.113.2"), env)).status, 200, "another client");
  assert.equal((await proxy.fetch(from(undefined), env)).status, 200, "anonymous");
  assert.equal((await proxy.fetch(from(undefined), env)).status, 200);
  assert.equal((await proxy.fetch(from(undefined), env)).status, 429, "anonymous is one client");
  clock.advance(45);
  assert.equal((await proxy.fetch(from("203.0.113.1"), env)).status, 200, "a new minute");
});

test("admin routes are not rate-limited (Access guards them)", async () => {
  const proxy = makeWorker(new World());
  const env = makeEnv({ ...ENV, RATE_LIMIT_PER_MINUTE: "1" });
  for (let i = 0; i < 3; i += 1) {
    assert.equal((await proxy.fetch(from("203.0.113.1", "/api/kpis"), env)).status, 200);
  }
});

test('RATE_LIMIT_PER_MINUTE "0" turns limiting off, binding or not', async () => {
  let asked = 0;
  const binding = { limit: async () => ((asked += 1), { success: false }) };
  const proxy = makeWorker(new World());
  const env = makeEnv({ ...ENV, RATE_LIMIT_PER_MINUTE: "0", RATE_LIMITER: binding });
  for (let i = 0; i < 200; i += 1) assert.equal((await proxy.fetch(from("203.0.113.1"), env)).status, 200);
  assert.equal(asked, 0);
});

test("with the RATE_LIMITER binding, it decides per client IP", async () => {
  const keys = [];
  const binding = {
    async limit({ key }) {
      keys.push(key);
      return { success: keys.length <= 1 };
    },
  };
  const proxy = makeWorker(new World());
  const env = makeEnv({ ...ENV, RATE_LIMIT_PER_MINUTE: "1000", RATE_LIMITER: binding });
  assert.equal((await proxy.fetch(from("203.0.113.9"), env)).status, 200);
  const answer = await proxy.fetch(from(undefined), env);
  assert.equal(answer.status, 429);
  assert.equal(answer.headers.get("retry-after"), "60");
  assert.deepEqual(keys, ["203.0.113.9", "anonymous"]);
});
