import type { IncomingHttpHeaders } from "node:http";

// Not `import … from "node:http"`: an ES module import of node:http builds its whole namespace,
// whose lazy getters (WebSocket, EventSource) load undici and http2, about 4 MB resident the
// daemon never uses. getBuiltinModule reads only the property asked for.
const { request: httpRequest } = process.getBuiltinModule("node:http");
const { request: httpsRequest } = process.getBuiltinModule("node:https");

/**
 * Requests to token APIs go through node:http(s), not fetch: fetch (undici) parses HTTP with a
 * WebAssembly module whose compilation leaves about 15 MB resident in a daemon that calls an
 * API a few times an hour (docs/performance.md). TLS trust is the same either way: Node.js's
 * CA store plus NODE_EXTRA_CA_CERTS.
 */
export interface ApiRequest {
  method: string;
  headers: Record<string, string>;
  body?: string | undefined;
  /** For the whole exchange, connect to the last byte: an API that trickles cannot hold a mint. */
  timeoutMs: number;
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /** Larger answers are refused (default 1 MB): a token answer is a few hundred bytes. */
  maxBytes?: number;
  signal?: AbortSignal | null | undefined;
}

export interface ApiAnswer {
  status: number;
  statusText: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const MAX_BYTES = 1_000_000;
const timedOut = (ms: number) => Object.assign(new Error(`no complete answer within ${ms / 1000}s`), { code: "ETIMEDOUT" });

/** One request, answered whole. Network failures reject with Node.js's error (its `code`). */
export function apiRequest(url: string | URL, options: ApiRequest): Promise<ApiAnswer> {
  const target = new URL(url);
  const send = target.protocol === "https:" ? httpsRequest : target.protocol === "http:" ? httpRequest : undefined;
  if (!send) return Promise.reject(new Error(`${target.protocol} URLs are not supported (use https:)`));
  const maxBytes = options.maxBytes ?? MAX_BYTES;
  return new Promise((resolve, reject) => {
    const req = send(target, { method: options.method, headers: options.headers, ...options.tls }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) req.destroy(new Error(`answer larger than ${maxBytes / 1_000_000} MB`));
        else chunks.push(chunk);
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? "", headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    const deadline = setTimeout(() => req.destroy(timedOut(options.timeoutMs)), options.timeoutMs);
    const abort = () => req.destroy(options.signal?.reason instanceof Error ? options.signal.reason : timedOut(options.timeoutMs));
    if (options.signal?.aborted) abort();
    options.signal?.addEventListener("abort", abort, { once: true });
    req.on("close", () => {
      clearTimeout(deadline);
      options.signal?.removeEventListener("abort", abort);
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

/**
 * The server's clock when it answered, from its Date header (undefined without a readable one):
 * an absolute expiry it gave is counted from this (see MintedToken.serverDate).
 */
export function serverDate(value: string | string[] | undefined | null): Date | undefined {
  const at = typeof value === "string" ? Date.parse(value) : Number.NaN;
  return Number.isNaN(at) ? undefined : new Date(at);
}

/** Headers with one string per name (repeated ones joined with ", "), as fetch gives them. */
export function flatHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(", ") : value;
  return flat;
}

/** The part of fetch's Response that API clients read (@octokit/request). */
export interface ApiResponse {
  status: number;
  statusText: string;
  ok: boolean;
  url: string;
  headers: Map<string, string>;
  body: null;
  text(): Promise<string>;
  json(): Promise<unknown>;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/** Header names are lower case, as fetch's Headers gives them; `get` takes any case. */
class AnswerHeaders extends Map<string, string> {
  override get(name: string): string | undefined {
    return super.get(name.toLowerCase());
  }
}

const SAME_ORIGIN_REDIRECTS = 3;

/**
 * A fetch for an API client, over apiRequest: `timeoutMs` bounds each whole exchange.
 * Redirects are followed only for GET and HEAD and only on the same origin (the request's
 * credentials never go to another host); any other 3xx is answered as it came.
 */
export function apiFetch(timeoutMs: number): (url: string, init?: { method?: string; headers?: unknown; body?: unknown; signal?: AbortSignal | null }) => Promise<ApiResponse> {
  return async (url, init = {}) => {
    const method = (init.method ?? "GET").toUpperCase();
    const headers = Object.fromEntries(Object.entries((init.headers ?? {}) as Record<string, string>).map(([k, v]) => [k, String(v)]));
    if (init.body !== undefined && init.body !== null && typeof init.body !== "string") throw new TypeError("apiFetch sends string bodies only");
    let current = new URL(url);
    for (let hops = 0; ; hops++) {
      const answer = await apiRequest(current, { method, headers, body: init.body ?? undefined, timeoutMs, signal: init.signal });
      const location = answer.headers.location;
      if (answer.status >= 300 && answer.status < 400 && location && (method === "GET" || method === "HEAD") && hops < SAME_ORIGIN_REDIRECTS) {
        const next = new URL(location, current);
        if (next.origin === current.origin) {
          current = next;
          continue;
        }
      }
      const flat = new AnswerHeaders(Object.entries(flatHeaders(answer.headers)));
      const text = answer.body.toString("utf8");
      return {
        status: answer.status,
        statusText: answer.statusText,
        ok: answer.status >= 200 && answer.status < 300,
        url: current.href,
        headers: flat,
        body: null,
        text: async () => text,
        json: async () => JSON.parse(text) as unknown,
        arrayBuffer: async () => answer.body.buffer.slice(answer.body.byteOffset, answer.body.byteOffset + answer.body.byteLength) as ArrayBuffer,
      };
    }
  };
}
