import { unwatchFile, watchFile } from "node:fs";
import { readSecretFile } from "../providers/settings/read-secret.ts";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { Counter } from "prom-client";
import { z } from "zod";
import { describeError, ProviderError } from "../errors/keeper-error.ts";
import { fingerprint } from "../log/redact.ts";
import type { Logger } from "../log/logger.ts";
import type { KeeperMetrics } from "../metrics/keeper-metrics.ts";
import { parseOrigin } from "../providers/settings/git-url.ts";
import { OWNER } from "../providers/settings/schema-parts.ts";
import type { BrokerConfig } from "../config/broker-config.ts";
import { decide } from "./policy.ts";
import type { ScopeCache } from "./scope-cache.ts";
import type { IdentityVerifier } from "./verify-identity.ts";

const askSchema = z.strictObject({
  gitUrl: z.string().max(512),
  owner: z.string().regex(OWNER),
  repository: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/).optional(),
  refused: z.string().regex(/^sha256:[0-9a-f]{12}$/).optional(),
});

const MAX_BODY = 4096;
// One identity's requests: a token bucket of ratePerIdentity per second, twice that in a burst.
interface Bucket {
  tokens: number;
  at: number;
}

export interface BrokerDeps {
  config: BrokerConfig;
  verifier: IdentityVerifier;
  scopes: ScopeCache;
  log: Logger;
  metrics: KeeperMetrics;
  now?: () => number;
}

/**
 * The broker's HTTP(S) API: `POST /v1/token` (an identity JWT in, a scoped token out, or the
 * reason it is refused), `/healthz`, `/metrics`. Every decision is one audit line; no token and
 * no identity JWT is ever in one.
 */
export class BrokerServer {
  readonly #deps: BrokerDeps;
  readonly #buckets = new Map<string, Bucket>();
  readonly #decisions: Counter<"decision">;
  #server: Server | undefined;
  #watched: string[] = [];

  constructor(deps: BrokerDeps) {
    this.#deps = deps;
    this.#decisions = new Counter({ name: "git_token_keeper_broker_requests_total", help: "Token requests to the broker, by decision.", labelNames: ["decision"], registers: [deps.metrics.registry] });
  }

  get url(): string {
    const a = this.#server?.address() as AddressInfo;
    const host = a.family === "IPv6" ? `[${a.address}]` : a.address;
    return `${this.#deps.config.tls ? "https" : "http"}://${host}:${a.port}`;
  }

  async start(): Promise<void> {
    const { config, log } = this.#deps;
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.#handle(req, res);
    // Node answers 431 to headers over 16 KiB: an oversized identity token never reaches a parser.
    const common = { maxHeaderSize: 16_384, requestTimeout: 30_000, headersTimeout: 10_000 };
    if (config.tls) {
      const tls = config.tls;
      const read = () => ({ cert: readSecretFile(tls.certFile), key: readSecretFile(tls.keyFile) });
      const server = createHttpsServer({ ...common, ...read() }, handler);
      // Certificates are renewed in place (cert-manager, a mounted Secret): re-read on change.
      for (const file of [tls.certFile, tls.keyFile]) {
        watchFile(file, { interval: 2_000 }, () => {
          try {
            server.setSecureContext(read());
            log.info("TLS certificate reloaded", { file });
          } catch (error) {
            log.error("cannot reload the TLS certificate; keeping the current one", { file, error: describeError(error) });
          }
        });
        this.#watched.push(file);
      }
      this.#server = server;
    } else {
      this.#server = createHttpServer(common, handler);
    }
    const server = this.#server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(config.listen.port, config.listen.host, () => resolve());
    });
    log.info("broker listening", { url: this.url });
  }

  async stop(): Promise<void> {
    for (const file of this.#watched) unwatchFile(file);
    const server = this.#server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "content-type": typeof body === "string" ? "text/plain; charset=utf-8" : "application/json", "cache-control": "no-store", ...headers });
      res.end(typeof body === "string" ? body : JSON.stringify(body));
    };
    try {
      if (req.method === "GET" && path === "/healthz") return send(200, "ok\n");
      if (req.method === "GET" && path === "/metrics") {
        res.writeHead(200, { "content-type": this.#deps.metrics.registry.contentType });
        res.end(await this.#deps.metrics.registry.metrics());
        return;
      }
      if (path !== "/v1/token") return send(404, { message: "not found; POST /v1/token, GET /healthz, GET /metrics" });
      if (req.method !== "POST") return send(405, { message: "POST only" }, { allow: "POST" });
      await this.#token(req, send);
    } catch (error) {
      this.#deps.log.error("broker request failed", { error: describeError(error) });
      if (!res.headersSent) send(500, { message: "internal error" });
    }
  }

  async #token(req: IncomingMessage, send: (status: number, body: unknown, headers?: Record<string, string>) => void): Promise<void> {
    const { config, verifier, scopes, log } = this.#deps;
    const audit = (decision: string, fields: Record<string, unknown>) => {
      this.#decisions.inc({ decision });
      log.info("token request", { audit: true, decision, ...fields });
    };
    const bearer = /^Bearer ([A-Za-z0-9_.-]+)$/.exec(req.headers.authorization ?? "")?.[1];
    if (!bearer) {
      audit("unauthenticated", { reason: "no Authorization: Bearer <identity JWT>" });
      return send(401, { message: "send the workload's identity token as Authorization: Bearer <JWT>" }, { "www-authenticate": "Bearer" });
    }
    const body = await readBody(req);
    const verification = await verifier.verify(bearer);
    if (!verification.ok) {
      audit("unauthenticated", { reason: verification.reason, iss: verification.issuer, sub: verification.subject });
      return send(401, { message: verification.reason }, { "www-authenticate": 'Bearer error="invalid_token"' });
    }
    const { identity, claims } = verification.verified;
    const who = { identity: identity.name, iss: claims.iss, sub: typeof claims.sub === "string" ? claims.sub : undefined };
    const wait = this.#rateLimit(`${claims.iss}\0${String(claims.sub)}`);
    if (wait > 0) {
      audit("rate-limited", { ...who });
      return send(429, { message: "too many requests from this identity" }, { "retry-after": String(Math.ceil(wait / 1000)) });
    }
    if (body === undefined) {
      audit("bad-request", { ...who, reason: `body larger than ${MAX_BODY} bytes` });
      return send(413, { message: `the request body is larger than ${MAX_BODY} bytes` });
    }
    let ask: z.output<typeof askSchema>;
    try {
      ask = askSchema.parse(JSON.parse(body));
    } catch {
      audit("bad-request", { ...who, reason: "body is not {gitUrl, owner, repository?, refused?}" });
      return send(400, { message: 'the body must be JSON {"gitUrl": "https://github.com", "owner": "acme", "repository": "app"} (repository and refused optional)' });
    }
    const origin = parseOrigin(ask.gitUrl, { allowPath: false });
    const owner = ask.owner.toLowerCase();
    const asked = { gitUrl: ask.gitUrl, owner, repository: ask.repository, refused: ask.refused };
    if ("problem" in origin) {
      audit("bad-request", { ...who, asked, reason: origin.problem });
      return send(400, { message: `gitUrl: ${origin.problem}` });
    }
    const decision = decide(config.policies, identity.name, claims, { gitOrigin: origin.origin, owner, repository: ask.repository });
    if (!decision.allow) {
      audit("denied", { ...who, asked, reason: decision.reason });
      return send(403, { message: decision.reason });
    }
    const provider = config.providers.find((p) => p.gitOrigin === origin.origin && (!p.owners || p.owners.includes(owner)));
    const used = { ...who, claims: decision.claimsUsed, asked, policy: decision.policy.at };
    if (!provider) {
      audit("denied", { ...used, reason: `no provider serves owner '${owner}' on ${origin.origin}` });
      return send(403, { message: `no provider of this broker serves owner '${owner}' on ${origin.origin}` });
    }
    try {
      const record = await scopes.token({ provider, owner, repositories: decision.repositories, permissions: decision.permissions }, ask.refused);
      audit("allowed", { ...used, repositories: decision.repositories, permissions: decision.permissions, fingerprint: fingerprint(record.token), expiresAt: new Date(record.expires * 1000).toISOString() });
      return send(200, { token: record.token, username: record.username, expires_at: new Date(record.expires * 1000).toISOString() });
    } catch (error) {
      const retryAfterMs = error instanceof ProviderError && error.retryAfterMs ? error.retryAfterMs : 5_000;
      audit("unavailable", { ...used, reason: describeError(error) });
      return send(503, { message: `no token now: ${describeError(error)}` }, { "retry-after": String(Math.max(1, Math.ceil(retryAfterMs / 1000))) });
    }
  }

  /** Milliseconds until this identity may ask again; 0 when it may now. */
  #rateLimit(key: string): number {
    const now = (this.#deps.now ?? Date.now)();
    const rate = this.#deps.config.ratePerIdentity;
    const burst = rate * 2;
    const bucket = this.#buckets.get(key) ?? { tokens: burst, at: now };
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * rate);
    bucket.at = now;
    this.#buckets.set(key, bucket);
    if (this.#buckets.size > 100_000) this.#buckets.clear();
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return ((1 - bucket.tokens) / rate) * 1000;
  }
}

/** The request body as text, or undefined when it is longer than MAX_BODY. */
function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) over = true;
      else chunks.push(c);
    });
    req.on("end", () => resolve(over ? undefined : Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
