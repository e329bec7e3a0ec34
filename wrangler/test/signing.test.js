import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";

import { canonicalQuery, proxySignature, sha256Hex, signatureHeaders } from "../src/signing.js";

const vectors = JSON.parse(await readFile(new URL("./vectors.json", import.meta.url), "utf8"));

test("the shared vectors (also checked by metric-stream's Python side) hold", async () => {
  assert.ok(vectors.length >= 1);
  for (const v of vectors) {
    assert.equal(canonicalQuery(v.query), v.canonical_query);
    assert.equal(await sha256Hex(v.body), v.body_sha256);
    assert.equal(await proxySignature(v.secret, v), v.signature);
  }
});

test("the brief's vector has its fixed value", async () => {
  const signature = await proxySignature("test-secret", {
    timestamp: "1700000000",
    origin: "forward",
    method: "POST",
    path: "/api/kpi-data",
    query: { b: "2", a: "x y" },
    body: '{"v":1}',
  });
  assert.equal(signature, "v1=feaa7652f418b1a75c9050282c0b1edba7a355a779430b670567f6e2cd34b56d");
});

test("the canonical query encodes like encodeURIComponent and sorts by code unit", () => {
  assert.equal(canonicalQuery(""), "");
  assert.equal(canonicalQuery({ b: "2", a: "x y" }), "a=x%20y&b=2");
  assert.equal(canonicalQuery({ q: "ä/&=*'()!~" }), "q=%C3%A4%2F%26%3D*'()!~");
  // "1" (0x31) sorts before "=" (0x3D), and upper case before lower case
  assert.equal(canonicalQuery("a=1&a1=2&B=3"), "B=3&a1=2&a=1");
  assert.equal(canonicalQuery("q=a+b&r=%2B"), "q=a%20b&r=%2B");
});

test("the canonical query is the servers' dict: empty values dropped, the last repeat kept", () => {
  assert.equal(canonicalQuery({ empty: "", a: "1" }), "a=1");
  assert.equal(canonicalQuery("flag&a=1"), "a=1");
  assert.equal(canonicalQuery("a=1&a=2&b=3&a=3"), "a=3&b=3");
  assert.equal(canonicalQuery("a=1&a="), "a=1");
  assert.equal(canonicalQuery(new URLSearchParams("b=1&a=2")), "a=2&b=1");
});

test("the body hash is SHA-256 of the exact bytes", async () => {
  const empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  assert.equal(await sha256Hex(""), empty);
  assert.equal(await sha256Hex(new Uint8Array(0)), empty);
  const bytes = new Uint8Array([0xff, 0x00, 0x7b]);
  assert.equal(await sha256Hex(bytes), await sha256Hex(bytes.buffer));
  assert.notEqual(await sha256Hex('{"v":1}'), await sha256Hex('{"v": 1}'));
});

test("every part of the request is covered by the signature", async () => {
  const base = { timestamp: "1", origin: "forward", method: "POST", path: "/api/x", query: "a=1", body: "b" };
  const signature = await proxySignature("s", base);
  for (const change of [
    { timestamp: "2" },
    { origin: "cron" },
    { method: "PUT" },
    { path: "/api/y" },
    { query: "a=2" },
    { body: "c" },
  ]) {
    assert.notEqual(await proxySignature("s", { ...base, ...change }), signature, JSON.stringify(change));
  }
  assert.notEqual(await proxySignature("t", base), signature);
  assert.equal(await proxySignature("s", { ...base, method: "post" }), signature);
});

test("the headers carry unix seconds and the origin", async () => {
  const headers = await signatureHeaders("s", 1_700_000_000_999, {
    origin: "cron",
    method: "POST",
    path: "/api/tick",
    query: "",
    body: "",
  });
  assert.equal(headers["x-metric-stream-proxy-timestamp"], "1700000000");
  assert.equal(headers["x-metric-stream-proxy-origin"], "cron");
  assert.match(headers["x-metric-stream-proxy-signature"], /^v1=[0-9a-f]{64}$/);
});
