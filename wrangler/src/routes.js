/**
 * Which guard a request passes before it is forwarded. Default deny: whatever is not
 * listed as public or ingestion is admin, so a route added to metric-stream later is
 * behind Cloudflare Access until someone decides otherwise here.
 */

const PUBLIC = new Set(["GET /api/health", "GET /api/charts/health", "GET /api/openapi.json"]);

// These carry their own key or HMAC (checked by metric-stream): callers are n8n, not people.
const INGESTION = new Set(["POST /api/kpi-data", "POST /api/kpi-error"]);

/**
 * @param {string} method
 * @param {string} path the decoded path, as metric-stream will see it
 * @returns {"public" | "ingestion" | "admin" | null} null: not an API path
 */
export function routeClass(method, path) {
  if (!path.startsWith("/api/")) return null;
  const route = `${method} ${path}`;
  if (PUBLIC.has(route)) return "public";
  if (INGESTION.has(route)) return "ingestion";
  return "admin";
}
