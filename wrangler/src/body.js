/**
 * The client's request body, read whole: the signature covers its SHA-256, so it cannot
 * be streamed through. The limit is checked on Content-Length first (refusing before a
 * byte is read) and again while reading (a chunked body announces no length).
 */

import { ProxyError } from "./errors.js";

function tooLarge(limit) {
  return new ProxyError(
    "payload_too_large",
    `the request body is larger than the proxy's limit of ${limit} bytes`,
  );
}

/**
 * @param {Request} request
 * @param {number} limit bytes
 * @returns {Promise<Uint8Array>} empty for GET and HEAD, which carry no body
 */
export async function readBody(request, limit) {
  if (request.method === "GET" || request.method === "HEAD" || request.body === null) {
    return new Uint8Array(0);
  }
  const declared = Number(request.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);

  const reader = request.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}
