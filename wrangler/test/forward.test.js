import assert from "node:assert/strict";
import { test } from "node:test";

import worker from "../src/index.js";
import { proxySignature } from "../src/signing.js";
import { SECRET, UPSTREAM, World, errorOf, makeEnv, makeWorker, request } from "./fakes.js";

const PUBLIC_ENV = makeEnv({ ACCESS_JWKS_URL: undefined, ACCESS_DISABLED: "true" });

/** Recomputes the signature of a request as metric-stream receives it. */
async function expectedSignature(forwarded, clientPath) {
  const url = new URL(forwarded.url);
  return proxySignature(SECRET, {
    timestamp: forwarded.headers.get("x-metric-stream-proxy-timestamp"),
    origin: forwarded.headers.get("x-metric-stream-proxy-origin"),
    method: forwarded.method,
    path: clientPath,
    query: url.searchParams,
    body: new Uint8Array(await forwarded.clone().arrayBuffer()),
  });
}

test("the default export is a Worker with both entry points", () => {
  assert.equal(typeof worker.fetch, "function");
  assert.equal(typeof worker.scheduled, "function");
});

test("an ingestion callback is forwarded under the upstream's base path, signed", async () => {
  const world = new World();
  const body = '{"kpiId":"btc","data":1}';
  const answer = await makeWorker(world).fetch(
    request("/api/kpi-data?b=2&a=x%20y", {
      method: "POST",
      body,
      headers: { "content-type": "application/json", "x-api-key": "ingest" },
    }),
    PUBLIC_ENV,
  );
  assert.equal(answer.status, 200);
  const [forwarded] = world.upstreamCalls;
  assert.equal(forwarded.url, `${UPSTREAM}/api/kpi-data?b=2&a=x%20y`);
  assert.equal(forwarded.method, "POST");
  assert.equal(await forwarded.clone().text(), body);
  assert.equal(forwarded.headers.get("x-api-key"), "ingest");
  assert.equal(forwarded.headers.get("x-metric-stream-proxy-origin"), "forward");
  const stamp = Number(forwarded.headers.get("x-metric-stream-proxy-timestamp"));
  assert.ok(Math.abs(stamp - Date.now() / 1000) < 5);
  assert.equal(
    forwarded.headers.get("x-metric-stream-proxy-signature"),
    await expectedSignature(forwarded, "/api/kpi-data"),
  );
});

test("the signed path is the client's decoded path", async () => {
  const world = new World();
  await makeWorker(world).fetch(request("/api/kpis/btc%20usd/%C3%A4?x=1"), PUBLIC_ENV);
  const [forwarded] = world.upstreamCalls;
  assert.equal(forwarded.url, `${UPSTREAM}/api/kpis/btc%20usd/%C3%A4?x=1`);
  assert.equal(
    forwarded.headers.get("x-metric-stream-proxy-signature"),
    await expectedSignature(forwarded, "/api/kpis/btc usd/ä"),
  );
});

test("a path that is not valid percent-encoding is a 400, not forwarded", async () => {
  const world = new World();
  const answer = await makeWorker(world).fetch(request("/api/kpis/%E0%A4%A"), PUBLIC_ENV);
  assert.equal(answer.status, 400);
  assert.equal((await errorOf(answer)).code, "bad_request");
  assert.equal(world.upstreamCalls.length, 0);
});

test("the client cannot bring proxy headers, an Access token or hop-by-hop headers along", async () => {
  const world = new World();
  await makeWorker(world).fetch(
    request("/api/health", {
      headers: {
        "x-metric-stream-proxy-signature": "v1=forged",
        "x-metric-stream-proxy-origin": "cron",
        "x-metric-stream-proxy-whatever": "x",
        "cf-access-jwt-assertion": "a.b.c",
        cookie: "theme=dark; CF_Authorization=a.b.c; lang=en",
        connection: "keep-alive, x-private",
        "x-private": "hop",
        "keep-alive": "timeout=5",
        "x-forwarded-for": "6.6.6.6",
        "cf-connecting-ip": "203.0.113.7",
        accept: "application/json",
      },
    }),
    PUBLIC_ENV,
  );
  const headers = world.upstreamCalls[0].headers;
  assert.deepEqual(
    [...headers.keys()].filter((h) => h.startsWith("x-metric-stream-proxy-")).sort(),
    ["x-metric-stream-proxy-origin", "x-metric-stream-proxy-signature", "x-metric-stream-proxy-timestamp"],
  );
  assert.equal(headers.get("x-metric-stream-proxy-origin"), "forward");
  assert.notEqual(headers.get("x-metric-stream-proxy-signature"), "v1=forged");
  assert.equal(headers.get("cf-access-jwt-assertion"), null);
  assert.equal(headers.get("cookie"), "theme=dark; lang=en");
  for (const hop of ["connection", "keep-alive", "x-private"]) assert.equal(headers.get(hop), null);
  assert.equal(headers.get("x-forwarded-for"), "203.0.113.7");
  assert.equal(headers.get("accept"), "application/json");
});

test("the request id is the client's when it sent one, a fresh UUID otherwise", async () => {
  const world = new World();
  const proxy = makeWorker(world);
  await proxy.fetch(request("/api/health", { headers: { "x-request-id": "abc-123" } }), PUBLIC_ENV);
  await proxy.fetch(request("/api/health"), PUBLIC_ENV);
  await proxy.fetch(request("/api/health", { headers: { "x-request-id": "bad id\u0001" } }), PUBLIC_ENV);
  const [kept, made, replaced] = world.upstreamCalls.map((r) => r.headers.get("x-request-id"));
  assert.equal(kept, "abc-123");
  assert.match(made, /^[0-9a-f-]{36}$/);
  assert.match(replaced, /^[0-9a-f-]{36}$/);
});

test("the upstream's answer comes back as it is: status, headers and streamed body", async () => {
  const world = new World({
    upstream: () =>
      new Response(new Blob(["chunk-1 ", "chunk-2"]).stream(), {
        status: 201,
        headers: {
          "content-type": "text/csv",
          "x-request-id": "from-upstream",
          "x-custom": "kept",
          "keep-alive": "timeout=5",
        },
      }),
  });
  const answer = await makeWorker(world).fetch(request("/api/health"), PUBLIC_ENV);
  assert.equal(answer.status, 201);
  assert.equal(answer.headers.get("content-type"), "text/csv");
  assert.equal(answer.headers.get("x-custom"), "kept");
  assert.equal(answer.headers.get("x-request-id"), "from-upstream");
  assert.equal(answer.headers.get("keep-alive"), null);
  assert.equal(await answer.text(), "chunk-1 chunk-2");
});

test("metric-stream's own JSON errors, 5xx included, pass through untouched", async () => {
  const error = { error: { code: "unavailable", message: "store is down" } };
  const world = new World({ upstream: () => Response.json(error, { status: 503 }) });
  const answer = await makeWorker(world).fetch(request("/api/health"), PUBLIC_ENV);
  assert.equal(answer.status, 503);
  assert.deepEqual(await answer.json(), error);
  assert.ok(answer.headers.get("x-request-id"));
});

test("a path outside /api/ is a JSON 404 and reaches nobody", async () => {
  const world = new World();
  for (const path of ["/", "/api", "/index.html", "/apiary/x"]) {
    const answer = await makeWorker(world).fetch(request(path), PUBLIC_ENV);
    assert.equal(answer.status, 404, path);
    assert.equal((await errorOf(answer)).code, "not_found");
    assert.ok(answer.headers.get("x-request-id"));
  }
  assert.equal(world.calls.length, 0);
});

test("without PROXY_SECRET every request is a 500 and nothing is forwarded unsigned", async () => {
  const world = new World();
  for (const path of ["/api/health", "/"]) {
    const answer = await makeWorker(world).fetch(request(path), makeEnv({ PROXY_SECRET: undefined }));
    assert.equal(answer.status, 500);
    const error = await errorOf(answer);
    assert.equal(error.code, "configuration_error");
    assert.match(error.message, /PROXY_SECRET is not set/);
    assert.ok(answer.headers.get("x-request-id"));
  }
  const answer = await makeWorker(world).fetch(request("/api/health"), makeEnv({ PROXY_SECRET: " " }));
  assert.equal(answer.status, 500);
  assert.equal(world.calls.length, 0);
});

test("a malformed number in the configuration is a 500 that names the variable", async () => {
  const answer = await makeWorker(new World()).fetch(
    request("/api/health"),
    makeEnv({ UPSTREAM_TIMEOUT_MS: "soon" }),
  );
  assert.equal(answer.status, 500);
  assert.match((await errorOf(answer)).message, /UPSTREAM_TIMEOUT_MS/);
});

test("a body over MAX_BODY_BYTES by Content-Length is a 413 before it is read", async () => {
  const world = new World();
  const stream = new ReadableStream({
    pull() {
      throw new Error("the body must not be read");
    },
  });
  const answer = await makeWorker(world).fetch(
    request("/api/kpi-data", {
      method: "POST",
      body: stream,
      duplex: "half",
      headers: { "content-length": "2048" },
    }),
    makeEnv({ MAX_BODY_BYTES: "1024" }),
  );
  assert.equal(answer.status, 413);
  assert.equal((await errorOf(answer)).code, "payload_too_large");
  assert.equal(world.upstreamCalls.length, 0);
});

test("a chunked body that grows over MAX_BODY_BYTES is a 413 once it passes the limit", async () => {
  const world = new World();
  let sent = 0;
  const stream = new ReadableStream({
    pull(controller) {
      sent += 1;
      if (sent > 100) throw new Error("read on after the limit");
      controller.enqueue(new Uint8Array(300));
    },
  });
  const answer = await makeWorker(world).fetch(
    request("/api/kpi-data", { method: "POST", body: stream, duplex: "half" }),
    makeEnv({ MAX_BODY_BYTES: "1024" }),
  );
  assert.equal(answer.status, 413);
  assert.equal((await errorOf(answer)).code, "payload_too_large");
  assert.ok(sent <= 5, `read ${sent} chunks`);
  assert.equal(world.upstreamCalls.length, 0);
});

test("a body of exactly MAX_BODY_BYTES is forwarded", async () => {
  const world = new World();
  const answer = await makeWorker(world).fetch(
    request("/api/kpi-data", { method: "POST", body: "x".repeat(1024) }),
    makeEnv({ MAX_BODY_BYTES: "1024" }),
  );
  assert.equal(answer.status, 200);
  assert.equal((await world.upstreamCalls[0].arrayBuffer()).byteLength, 1024);
});

test("an upstream that cannot be reached is a JSON 502", async () => {
  const world = new World({
    upstream: () => {
      throw new TypeError("fetch failed: ECONNREFUSED");
    },
  });
  const answer = await makeWorker(world).fetch(request("/api/health"), PUBLIC_ENV);
  assert.equal(answer.status, 502);
  const error = await errorOf(answer);
  assert.equal(error.code, "upstream_error");
  assert.match(error.message, /cannot be reached/);
  assert.ok(answer.headers.get("x-request-id"));
});

test("an upstream that does not answer within UPSTREAM_TIMEOUT_MS is a JSON 504", async () => {
  let aborted = false;
  const world = new World({
    upstream: (_request, init) =>
      new Promise((_resolve, reject) => {
        init.signal.addEventListener("abort", () => {
          aborted = true;
          reject(new DOMException("aborted", "AbortError"));
        });
      }),
  });
  const started = Date.now();
  const answer = await makeWorker(world).fetch(
    request("/api/health"),
    makeEnv({ ACCESS_JWKS_URL: undefined, UPSTREAM_TIMEOUT_MS: "50" }),
  );
  assert.equal(answer.status, 504);
  assert.equal((await errorOf(answer)).code, "upstream_timeout");
  assert.ok(aborted);
  assert.ok(Date.now() - started < 2000);
});

test("an upstream HTML error page becomes a JSON 502 that quotes its status", async () => {
  const world = new World({
    upstream: () =>
      new Response("<html><body><h1>500 Internal Server Error</h1></body></html>", {
        status: 500,
        headers: { "content-type": "text/html" },
      }),
  });
  const answer = await makeWorker(world).fetch(request("/api/health"), PUBLIC_ENV);
  assert.equal(answer.status, 502);
  const text = await answer.clone().text();
  assert.doesNotMatch(text, /<html/);
  const error = await errorOf(answer);
  assert.equal(error.code, "upstream_error");
  assert.match(error.message, /500/);
});

test("a bug in the Worker is still a JSON answer", async () => {
  const world = new World({ upstream: () => "not a Response" });
  const answer = await makeWorker(world).fetch(request("/api/health"), PUBLIC_ENV);
  assert.equal(answer.status, 500);
  assert.equal((await errorOf(answer)).code, "internal_error");
});
