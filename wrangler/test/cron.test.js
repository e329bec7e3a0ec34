import assert from "node:assert/strict";
import { afterEach, beforeEach, mock, test } from "node:test";

import { proxySignature } from "../src/signing.js";
import { SECRET, UPSTREAM, World, makeEnv, makeWorker } from "./fakes.js";

const EVENT = { cron: "* * * * *", scheduledTime: Date.now() };

beforeEach(() => {
  mock.method(console, "log", () => {});
  mock.method(console, "error", () => {});
});

afterEach(() => mock.restoreAll());

function logged(method) {
  return console[method].mock.calls.map((call) => call.arguments.join(" ")).join("\n");
}

test("the cron trigger sends one signed POST /api/tick with origin cron", async () => {
  const outside = new World({ upstream: () => Response.json({ fired: [], recovered: [], alerts: [] }) });
  await makeWorker(outside).scheduled(EVENT, makeEnv(), {});
  assert.equal(outside.calls.length, 1);
  const [tick] = outside.calls;
  assert.equal(tick.method, "POST");
  assert.equal(tick.url, `${UPSTREAM}/api/tick`);
  assert.equal((await tick.clone().arrayBuffer()).byteLength, 0);
  const timestamp = tick.headers.get("x-metric-stream-proxy-timestamp");
  assert.equal(tick.headers.get("x-metric-stream-proxy-origin"), "cron");
  const expected = await proxySignature(SECRET, {
    timestamp,
    origin: "cron",
    method: "POST",
    path: "/api/tick",
    query: "",
    body: "",
  });
  assert.equal(tick.headers.get("x-metric-stream-proxy-signature"), expected);
  assert.match(logged("log"), /upstream answered 200/);
});

test("a refused tick is logged with metric-stream's error", async () => {
  const error = { error: { code: "forbidden", message: "signature is stale" } };
  const outside = new World({ upstream: () => Response.json(error, { status: 403 }) });
  await makeWorker(outside).scheduled(EVENT, makeEnv(), {});
  assert.match(logged("error"), /403.*signature is stale/);
});

test("the cron handler never throws: upstream down, timing out, or no secret", async () => {
  const down = new World({
    upstream: () => {
      throw new TypeError("fetch failed");
    },
  });
  await makeWorker(down).scheduled(EVENT, makeEnv(), {});
  assert.match(logged("error"), /cannot be reached/);

  const hanging = new World({
    upstream: (_request, init) =>
      new Promise((_resolve, reject) => init.signal.addEventListener("abort", () => reject(new Error("aborted")))),
  });
  await makeWorker(hanging).scheduled(EVENT, makeEnv({ UPSTREAM_TIMEOUT_MS: "20" }), {});
  assert.match(logged("error"), /did not answer within 20 ms/);

  const unset = new World();
  await makeWorker(unset).scheduled(EVENT, makeEnv({ PROXY_SECRET: undefined }), {});
  assert.equal(unset.calls.length, 0, "never an unsigned tick");
  assert.match(logged("error"), /PROXY_SECRET is not set/);
});
