import { unwatchFile, watchFile } from "node:fs";
import { readSecretFile } from "../providers/settings/read-secret.ts";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { Counter } from "prom-client";
import { z } from "zod";
import { describeError, ProviderError } from "../errors/keeper-error.ts";
import { fingerprint, verbatim } from "../log/redact.ts";
import type { Logger } from "../log/logger.ts";
import type { KeeperMetrics } from "../metrics/keeper-metrics.ts";
import { parseOrigin } from "../providers/settings/git-url.ts";
import { OWNER } from "../providers/settings/schema-parts.ts";
import type { BrokerConfig } from "../config/broker-config.ts";
import { decide } from "./policy.ts";
import { ScopeDenied, ScopeRateLimited, type ScopeCache } from "./scope-cache.ts";
import type { IdentityVerifier } from "./verify-identity.ts";

const askSchema = z.strictObject({
  gitUrl: z.string().max(512),
  owner: z.string().regex(OWNER),
  repository: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/).optional(),
  refused: z.string().regex(/^sha256:[0-9a-f]{12}$/).optional(),
});

const MAX_BODY = 4096;
/** Identities whose rate buckets are kept; the least recently seen go first. */
const MAX_BUCKETS = 10_000;
/** A connection must finish its TLS handshake, and then send its first request, within this. */
const FIRST_REQUEST_MS = 10_000;
/** Log lines about requests that proved no identity, per second (the rest are counted, not logged). */
const UNVERIFIED_LINES_PER_SECOND = 100;
/** The longest an unverified claim value is logged. */
const UNVERIFIED_CHARS = 256;
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
 * reason it is refused), `/livez`, `/readyz` (and `/healthz`, the same); `/metrics` on a
 * listener of its own (metricsListen). Every decision is one audit line; no token and no identity
 * JWT is ever in one.
 */
export class BrokerServer {
  #deps: BrokerDeps;
  readonly #buckets = new Map<string, Bucket>();
  readonly #decisions: Counter<"decision">;
  #server: Server | undefined;
  #metricsServer: Server | undefined;
  #watched: string[] = [];
  readonly #waitingFirstRequest = new Map<Socket, NodeJS.Timeout>();
  readonly #perClient = new Map<string, number>();
  #unverifiedLines = { second: 0, count: 0, suppressed: 0 };

  constructor(deps: BrokerDeps) {
    this.#deps = deps;
    this.#decisions = new Counter({ name: "git_token_keeper_broker_requests_total", help: "Token requests to the broker, by decision.", labelNames: ["decision"], registers: [deps.metrics.registry] });
  }

  get url(): string {
    return addressUrl(this.#server, this.#deps.config.tls ? "https" : "http");
  }

  get metricsUrl(): string | undefined {
    return this.#metricsServer ? addressUrl(this.#metricsServer, "http") : undefined;
  }

  /** A reloaded config: policies, identities (a new verifier where they changed) and providers. */
  reload(deps: Pick<BrokerDeps, "config" | "verifier">): void {
    this.#deps = { ...this.#deps, ...deps };
    if (this.#server) this.#server.maxConnections = deps.config.maxConnections;
  }

  async start(): Promise<void> {
    const { config, log } = this.#deps;
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.#handle(req, res);
    // Node answers 431 to headers over 16 KiB: an oversized identity token never reaches a parser.
    // A request (headers and its small body) arrives within 10 s; a response may wait longer (a mint).
    const common = { maxHeaderSize: 16_384, requestTimeout: 10_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 };
    if (config.tls) {
      const tls = config.tls;
      const read = () => ({ cert: readSecretFile(tls.certFile), key: readSecretFile(tls.keyFile) });
      const server = createHttpsServer({ ...common, handshakeTimeout: FIRST_REQUEST_MS, ...read() }, handler);
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
    // A cap on connections, and none held open by a client that never asks: after its handshake a
    // connection has FIRST_REQUEST_MS to send a request; between requests, keepAliveTimeout.
    server.maxConnections = config.maxConnections;
    // And a share per client address, so that one client cannot hold every connection.
    server.on("connection", (socket: Socket) => {
      const peer = socket.remoteAddress ?? "";
      const held = (this.#perClient.get(peer) ?? 0) + 1;
      if (held > this.#deps.config.maxConnectionsPerClient) {
        socket.destroy();
        return;
      }
      this.#perClient.set(peer, held);
      socket.once("close", () => {
        const left = (this.#perClient.get(peer) ?? 1) - 1;
        if (left > 0) this.#perClient.set(peer, left);
        else this.#perClient.delete(peer);
      });
    });
    server.on(config.tls ? "secureConnection" : "connection", (socket: Socket) => {
      const timer = setTimeout(() => socket.destroy(), FIRST_REQUEST_MS);
      this.#waitingFirstRequest.set(socket, timer);
      socket.once("close", () => {
        clearTimeout(timer);
        this.#waitingFirstRequest.delete(socket);
      });
    });
    server.on("request", (req: IncomingMessage) => {
      const timer = this.#waitingFirstRequest.get(req.socket);
      if (timer === undefined) return;
      clearTimeout(timer);
      this.#waitingFirstRequest.delete(req.socket);
    });
    await listen(server, config.listen);
    log.info("broker listening", { url: this.url, maxConnections: config.maxConnections });
    if (config.metricsListen) {
      const metrics = createHttpServer({ requestTimeout: 10_000, headersTimeout: 5_000 }, (req, res) => {
        if (req.method === "GET" && (req.url ?? "/").split("?")[0] === "/metrics") {
          void this.#deps.metrics.registry.metrics().then((text) => {
            res.writeHead(200, { "content-type": this.#deps.metrics.registry.contentType });
            res.end(text);
          });
          return;
        }
        res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found; GET /metrics\n");
      });
      metrics.maxConnections = 64;
      this.#metricsServer = metrics;
      await listen(metrics, config.metricsListen);
      log.info("broker metrics listening", { url: this.metricsUrl });
    }
  }

  async stop(): Promise<void> {
    for (const file of this.#watched) unwatchFile(file);
    for (const timer of this.#waitingFirstRequest.values()) clearTimeout(timer);
    for (const server of [this.#server, this.#metricsServer]) {
      if (!server) continue;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  /** What keeps the broker from serving: identities without keys, providers that cannot mint. */
  problems(): string[] {
    // Keys that failed to load are tried again here too (within their cooldown), not only when
    // a token request comes: a readiness probe would otherwise wait on traffic that never comes.
    void this.#deps.verifier.prefetch();
    const problems: string[] = [];
    for (const identity of this.#deps.verifier.status()) {
      // Names only: /readyz answers anyone; why a fetch failed is in the log and `status`.
      if (!identity.keysLoaded) problems.push(`identity ${identity.name}: no usable keys of its issuer`);
    }
    for (const provider of this.#deps.scopes.failingProviders()) problems.push(`provider ${provider}: its last mints failed and no token it minted is usable`);
    return problems;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "content-type": typeof body === "string" ? "text/plain; charset=utf-8" : "application/json", "cache-control": "no-store", ...headers });
      res.end(typeof body === "string" ? body : JSON.stringify(body));
    };
    try {
      if (req.method === "GET" && path === "/livez") return send(200, "ok\n");
      if (req.method === "GET" && (path === "/readyz" || path === "/healthz")) {
        const problems = this.problems();
        return send(problems.length ? 503 : 200, { ready: problems.length === 0, problems });
      }
      if (path !== "/v1/token") return send(404, { message: "not found; POST /v1/token, GET /livez, GET /readyz" });
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
    // Lines about requests that were not served are bounded: whoever can reach the broker, or get
    // a token from a public issuer (any GitHub workflow can), sends them. Allowed ones always go.
    const unverifiedAudit = (decision: string, fields: Record<string, unknown>) => {
      const second = Math.floor((this.#deps.now ?? Date.now)() / 1000);
      if (second !== this.#unverifiedLines.second) this.#unverifiedLines = { second, count: 0, suppressed: this.#unverifiedLines.suppressed };
      if (++this.#unverifiedLines.count > UNVERIFIED_LINES_PER_SECOND) {
        this.#decisions.inc({ decision });
        this.#unverifiedLines.suppressed++;
        return;
      }
      const suppressed = this.#unverifiedLines.suppressed;
      this.#unverifiedLines.suppressed = 0;
      audit(decision, suppressed ? { ...fields, linesSuppressedBefore: suppressed } : fields);
    };
    // Who asks is proved before anything else is read; a caller that proves nobody gets its answer
    // and the connection closed (its body discarded, at most MAX_BODY bytes within the request
    // timeout: a socket closed with data unread is reset, and the answer could be lost with it;
    // no keep-alive to hold a slot with).
    const bearer = /^Bearer ([A-Za-z0-9_.-]+)$/.exec(req.headers.authorization ?? "")?.[1];
    if (!bearer) {
      unverifiedAudit("unauthenticated", { reason: "no Authorization: Bearer <identity JWT>" });
      await readBody(req).catch(() => undefined);
      return send(401, { message: "send the workload's identity token as Authorization: Bearer <JWT>" }, { "www-authenticate": "Bearer", connection: "close" });
    }
    const verification = await verifier.verify(bearer);
    if (!verification.ok) {
      // What an unverified token says is somebody's claim, not a fact: under its own key, cut short.
      const unverified = { iss: verification.issuer?.slice(0, UNVERIFIED_CHARS), sub: verification.subject?.slice(0, UNVERIFIED_CHARS) };
      if (verification.unavailable) {
        unverifiedAudit("unavailable", { reason: verification.reason, unverified });
        await readBody(req).catch(() => undefined);
        return send(503, { message: "the broker cannot check identity tokens now (its issuer's keys are not available); try again later" }, { "retry-after": String(Math.max(1, Math.ceil(verification.retryAfterMs / 1000))), connection: "close" });
      }
      unverifiedAudit("unauthenticated", { reason: verification.reason, unverified });
      await readBody(req).catch(() => undefined);
      return send(401, { message: verification.reason }, { "www-authenticate": 'Bearer error="invalid_token"', connection: "close" });
    }
    const body = await readBody(req);
    const { identity, claims } = verification.verified;
    // Verified claims are facts, logged exactly as they are (only a known token is ever replaced).
    const who = { identity: identity.name, iss: verbatim(claims.iss), sub: verbatim(typeof claims.sub === "string" ? claims.sub : undefined) };
    const holder = JSON.stringify([identity.name, claims.iss, claims.sub]);
    const wait = this.#rateLimit(holder);
    if (wait > 0) {
      unverifiedAudit("rate-limited", { ...who });
      return send(429, { message: "too many requests from this identity" }, { "retry-after": String(Math.ceil(wait / 1000)) });
    }
    if (body === undefined) {
      unverifiedAudit("bad-request", { ...who, reason: `body larger than ${MAX_BODY} bytes` });
      return send(413, { message: `the request body is larger than ${MAX_BODY} bytes` });
    }
    let ask: z.output<typeof askSchema>;
    try {
      ask = askSchema.parse(JSON.parse(body));
    } catch {
      unverifiedAudit("bad-request", { ...who, reason: "body is not {gitUrl, owner, repository?, refused?}" });
      return send(400, { message: 'the body must be JSON {"gitUrl": "https://github.com", "owner": "acme", "repository": "app"} (repository and refused optional)' });
    }
    const origin = parseOrigin(ask.gitUrl, { allowPath: false });
    const owner = ask.owner.toLowerCase();
    const asked = { gitUrl: ask.gitUrl, owner, repository: ask.repository, refused: ask.refused };
    if ("problem" in origin) {
      unverifiedAudit("bad-request", { ...who, asked, reason: origin.problem });
      return send(400, { message: `gitUrl: ${origin.problem}` });
    }
    const decision = decide(config.policies, identity.name, claims, { gitOrigin: origin.origin, owner, repository: ask.repository });
    if (!decision.allow) {
      unverifiedAudit("denied", { ...who, asked, reason: decision.reason });
      return send(403, { message: decision.reason });
    }
    const used = { ...who, claims: verbatim(decision.claimsUsed), asked, policy: decision.policy.at };
    try {
      // The provider that serves the owner in fact (an installation's account, not a label).
      const provider = await scopes.providerFor(origin.origin, owner);
      if (!provider) {
        audit("denied", { ...used, reason: `no provider serves owner '${owner}' on ${origin.origin}` });
        return send(403, { message: `no provider of this broker serves owner '${owner}' on ${origin.origin}` });
      }
      const ownerListed = decision.policy.owners?.includes(owner) === true;
      const record = await scopes.token({ provider, owner, repositories: decision.repositories, permissions: decision.permissions, ownerListed }, holder, ask.refused);
      audit("allowed", { ...used, provider: provider.name, repositories: decision.repositories, permissions: decision.permissions, fingerprint: fingerprint(record.token), expiresAt: new Date(record.expires * 1000).toISOString() });
      return send(200, { token: record.token, username: record.username, expires_at: new Date(record.expires * 1000).toISOString() });
    } catch (error) {
      if (error instanceof ScopeRateLimited) {
        unverifiedAudit("rate-limited", { ...used, reason: error.message });
        return send(429, { message: error.message }, { "retry-after": String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))) });
      }
      if (error instanceof ScopeDenied) {
        audit("denied", { ...used, reason: error.message });
        return send(403, { message: error.message });
      }
      const retryAfterMs = error instanceof ProviderError && error.retryAfterMs ? error.retryAfterMs : 5_000;
      audit("unavailable", { ...used, reason: describeError(error) });
      // The reason is the operator's (it may name an installation): the audit line has it.
      return send(503, { message: "no token for this scope now: its token source failed; the broker's log says why" }, { "retry-after": String(Math.max(1, Math.ceil(retryAfterMs / 1000))) });
    }
  }

  /** Milliseconds until this identity may ask again; 0 when it may now. */
  #rateLimit(key: string): number {
    const now = (this.#deps.now ?? Date.now)();
    const rate = this.#deps.config.ratePerIdentity;
    // At least one request in a burst, however low the rate: else nothing is ever allowed.
    const burst = Math.max(1, rate * 2);
    const bucket = this.#buckets.get(key) ?? { tokens: burst, at: now };
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * rate);
    bucket.at = now;
    // Least recently seen out first; never all at once (that would refill everyone's bucket).
    this.#buckets.delete(key);
    this.#buckets.set(key, bucket);
    if (this.#buckets.size > MAX_BUCKETS) this.#buckets.delete(this.#buckets.keys().next().value as string);
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
    // A client gone before the end: nothing more will come.
    req.on("close", () => resolve(undefined));
  });
}

function addressUrl(server: Server | undefined, scheme: string): string {
  const a = server?.address() as AddressInfo;
  const host = a.family === "IPv6" ? `[${a.address}]` : a.address;
  return `${scheme}://${host}:${a.port}`;
}

function listen(server: Server, at: { host: string; port: number }): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(at.port, at.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
