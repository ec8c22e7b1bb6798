import { randomBytes, verify } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { auditToken } from "../support/secrets-audit.ts";
import { readBody } from "./http-helpers.ts";

/**
 * A local stand-in for the GitHub REST API parts the keeper uses. Like the real one it checks
 * the App JWT (RS256 signature against the App's public key, iss, iat, exp at most 10 minutes
 * ahead) and issues installation tokens with an expires_at; unlike it, tokens live seconds.
 */
export interface FakeInstallation {
  id: number;
  login: string;
  type?: "Organization" | "User";
  /** The repositories it is installed on (all, when not given). */
  repositories?: string[];
  /** What the owner granted the App (GitHub refuses a token asking more): by default these. */
  permissions?: Record<string, string>;
}

const GRANTED: Record<string, string> = { contents: "write", metadata: "read", pull_requests: "write", issues: "write" };
const LEVEL: Record<string, number> = { read: 1, write: 2, admin: 3 };

export interface IssuedToken {
  token: string;
  installationId: number;
  owner: string;
  expiresAt: number;
  issuedAt: number;
  revoked: boolean;
  repositories: string[] | undefined;
  permissions?: Record<string, string> | undefined;
}

interface Fault {
  status: number;
  count: number;
  headers?: Record<string, string>;
  body?: string;
}

export class FakeGitHub {
  readonly appId: number;
  readonly publicKey: string;
  readonly installations: FakeInstallation[];
  tokenLifetimeMs: number;
  /**
   * The installation tokens it issues: `classic` (`ghs_` and 64 characters), or `stateless`
   * (`ghs_` and a signed JWT, dots included, about 520 characters, GitHub's format since 2026),
   * padded to `statelessBytes` to try tokens of a few kilobytes.
   */
  tokenFormat: "classic" | "stateless" = "classic";
  statelessBytes = 520;
  /** Server clock offset, to simulate skew against the keeper's clock. */
  clockOffsetMs = 0;
  readonly tokens = new Map<string, IssuedToken>();
  readonly requests: { method: string; path: string; status: number }[] = [];
  mintCount = 0;
  /** Calls to the repository API (what gh uses), with the owner a live token was for. */
  readonly repositoryCalls: { method: string; path: string; owner: string | undefined; status: number }[] = [];
  /** Release assets uploaded with a live token. */
  readonly uploads: { owner: string; repo: string; name: string; bytes: number }[] = [];
  /** The most requests it was answering at once (the daemon bounds this by mintConcurrency). */
  peakInFlight = 0;
  #inFlight = 0;
  /** Whether tokens it mints join the secrets audit (off where a test hands one to a command on purpose). */
  audit = true;
  /** Every Authorization header value the API saw (JWTs), for secret audits. */
  readonly jwts: string[] = [];
  #faults: Fault[] = [];
  #mode: "up" | "reset" | "hang" = "up";
  #server: Server | undefined;
  #port = 0;
  readonly #sockets = new Set<Socket>();

  constructor(options: { appId: number; publicKey: string; installations: FakeInstallation[]; tokenLifetimeMs?: number }) {
    this.appId = options.appId;
    this.publicKey = options.publicKey;
    this.installations = options.installations;
    this.tokenLifetimeMs = options.tokenLifetimeMs ?? 3_600_000;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  async start(port = 0): Promise<void> {
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.on("connection", (socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.#server?.listen(port || this.#port, "127.0.0.1", resolve));
    this.#port = (this.#server.address() as AddressInfo).port;
  }

  /** Stops listening: connections are refused until start() again (same port). */
  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    this.#server = undefined;
  }

  /** The next `count` API calls get this status (e.g. 502, or 429 with Retry-After). */
  failNext(status: number, count = 1, headers?: Record<string, string>, body?: string): void {
    this.#faults.push({ status, count, headers, body });
  }

  clearFaults(): void {
    this.#faults = [];
  }

  /** "reset": connections are accepted and dropped; "hang": requests never get an answer. */
  setMode(mode: "up" | "reset" | "hang"): void {
    this.#mode = mode;
  }

  revokeAll(): void {
    for (const t of this.tokens.values()) t.revoked = true;
  }

  /** What the git server asks: is this a live token for this owner (and repository)? */
  accepts(token: string, owner: string, repo?: string): boolean {
    const t = this.tokens.get(token);
    if (!t || t.revoked || t.owner !== owner.toLowerCase() || Date.now() >= t.expiresAt) return false;
    return !repo || !t.repositories || t.repositories.includes(repo.replace(/\.git$/, ""));
  }

  /** Issues a token directly, as a CI system hands a job one token when it starts. */
  issueToken(owner: string): string {
    const installation = this.installations.find((i) => i.login.toLowerCase() === owner.toLowerCase());
    if (!installation) throw new Error(`no installation for ${owner}`);
    const token = this.#newToken();
    this.tokens.set(token, {
      token,
      installationId: installation.id,
      owner: installation.login.toLowerCase(),
      expiresAt: Date.now() + this.tokenLifetimeMs,
      issuedAt: Date.now(),
      revoked: false,
      repositories: undefined,
    });
    return token;
  }

  mintsFor(owner: string): number {
    return [...this.tokens.values()].filter((t) => t.owner === owner).length;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.#mode === "reset") {
      req.socket.destroy();
      return;
    }
    if (this.#mode === "hang") return;
    this.#inFlight++;
    this.peakInFlight = Math.max(this.peakInFlight, this.#inFlight);
    res.on("close", () => this.#inFlight--);
    // Like a real API: a moment per request, so concurrency shows.
    await new Promise((r) => setTimeout(r, 2));
    const body = await readBody(req);
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const send = (status: number, data: unknown, headers: Record<string, string> = {}) => {
      this.requests.push({ method: req.method ?? "", path, status });
      const date = this.clockOffsetMs ? { date: new Date(Date.now() + this.clockOffsetMs).toUTCString() } : {};
      res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...date, ...headers });
      res.end(typeof data === "string" ? data : JSON.stringify(data));
    };
    const fault = this.#faults[0];
    if (fault) {
      if (--fault.count <= 0) this.#faults.shift();
      return send(fault.status, fault.body ?? { message: `injected ${fault.status}` }, fault.headers);
    }
    if (/^\/(repos|graphql|uploads)(\/|$)/.test(path)) return this.#repositoryApi(req, path, body, send);
    const jwtProblem = this.#checkJwt(req.headers.authorization);
    if (jwtProblem) {
      return send(401, { message: jwtProblem, documentation_url: "https://docs.github.com/rest" });
    }
    let m: RegExpExecArray | null;
    if (req.method === "POST" && (m = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(path))) {
      const installation = this.installations.find((i) => i.id === Number(m?.[1]));
      if (!installation) return send(404, { message: "Not Found" });
      let payload: { repositories?: string[]; permissions?: Record<string, string> } = {};
      try {
        payload = body.length ? JSON.parse(body.toString("utf8")) : {};
      } catch {
        return send(400, { message: "Problems parsing JSON" });
      }
      // As GitHub checks: every repository must be the installation's, every permission granted.
      if (payload.repositories?.some((r) => installation.repositories && !installation.repositories.includes(r.toLowerCase()))) {
        return send(422, { message: "There is at least one repository that does not exist or is not accessible to the parent installation.", documentation_url: "https://docs.github.com/rest" });
      }
      const granted = installation.permissions ?? GRANTED;
      if (Object.entries(payload.permissions ?? {}).some(([k, v]) => (LEVEL[v] ?? 99) > (LEVEL[granted[k] ?? ""] ?? 0))) {
        return send(422, { message: "The permissions requested are not granted to this installation.", documentation_url: "https://docs.github.com/rest" });
      }
      this.mintCount++;
      // Newer installation tokens are longer than the classic 40 characters.
      const token = this.#newToken();
      const expiresAt = Math.floor((Date.now() + this.clockOffsetMs + this.tokenLifetimeMs) / 1000) * 1000;
      this.tokens.set(token, {
        token,
        installationId: installation.id,
        owner: installation.login.toLowerCase(),
        expiresAt: expiresAt - this.clockOffsetMs,
        issuedAt: Date.now(),
        revoked: false,
        repositories: payload.repositories,
        permissions: payload.permissions,
      });
      if (this.audit) auditToken(token);
      return send(201, {
        token,
        expires_at: new Date(expiresAt).toISOString().replace(/\.\d{3}Z$/, "Z"),
        permissions: payload.permissions ?? { contents: "write", metadata: "read" },
        repository_selection: payload.repositories ? "selected" : "all",
        ...(payload.repositories ? { repositories: payload.repositories.map((name) => ({ name })) } : {}),
      });
    }
    if (req.method === "GET" && (m = /^\/app\/installations\/(\d+)$/.exec(path))) {
      const installation = this.installations.find((i) => i.id === Number(m?.[1]));
      return installation ? send(200, this.#installationBody(installation)) : send(404, { message: "Not Found" });
    }
    if (req.method === "GET" && (m = /^\/(orgs|users)\/([^/]+)\/installation$/.exec(path))) {
      const kind = m[1] === "orgs" ? "Organization" : "User";
      const installation = this.installations.find(
        (i) => i.login.toLowerCase() === decodeURIComponent(m?.[2] ?? "").toLowerCase() && (i.type ?? "Organization") === kind,
      );
      return installation ? send(200, this.#installationBody(installation)) : send(404, { message: "Not Found" });
    }
    return send(404, { message: "Not Found" });
  }

  /**
   * The part of the API a job's tools use with an installation token (`Authorization: token …`
   * or `Bearer …`), as GitHub answers it: 401 "Bad credentials" for a token that is unknown,
   * revoked or expired, 404 for a live token of another owner. Enough for gh: a repository
   * (REST and GraphQL), a release by tag, and uploading an asset to it.
   */
  #repositoryApi(req: IncomingMessage, path: string, body: Buffer, send: (status: number, data: unknown) => void): void {
    const token = /^(?:token|bearer) (\S+)$/i.exec(req.headers.authorization ?? "")?.[1];
    const known = token ? this.tokens.get(token) : undefined;
    if (!token || !known || known.revoked || Date.now() >= known.expiresAt) {
      this.repositoryCalls.push({ method: req.method ?? "", path, owner: undefined, status: 401 });
      return send(401, { message: "Bad credentials", documentation_url: "https://docs.github.com/rest" });
    }
    const base = `http://${req.headers.host ?? "127.0.0.1"}`;
    const answer = (owner: string, repo: string, status: number, data: unknown) => {
      const allowed = this.accepts(token, owner, repo);
      this.repositoryCalls.push({ method: req.method ?? "", path, owner: owner.toLowerCase(), status: allowed ? status : 404 });
      return allowed ? send(status, data) : send(404, { message: "Not Found", documentation_url: "https://docs.github.com/rest" });
    };
    const repository = (owner: string, repo: string) => ({ id: 1, node_id: "R_1", name: repo, full_name: `${owner}/${repo}`, owner: { login: owner }, private: true, default_branch: "main" });
    let m: RegExpExecArray | null;
    if (req.method === "POST" && path === "/graphql") {
      let query: { query?: string; variables?: { owner?: string; name?: string } } = {};
      try {
        query = JSON.parse(body.toString("utf8"));
      } catch {
        return send(400, { message: "Problems parsing JSON" });
      }
      const { owner, name } = query.variables ?? {};
      if (!owner || !name || !/repository\(/.test(query.query ?? "")) return send(200, { errors: [{ message: "this fake answers repository queries only" }] });
      // gh looks a release up by tag both ways at once; GraphQL finds drafts only, and here none.
      if (/release\(tagName/.test(query.query ?? "")) return answer(owner, name, 200, { data: { repository: { release: null } } });
      return answer(owner, name, 200, {
        data: {
          repository: {
            id: "R_1", name, owner: { login: owner }, description: "", hasIssuesEnabled: true, hasWikiEnabled: false, viewerPermission: "WRITE",
            defaultBranchRef: { name: "main" }, parent: null, isPrivate: true, url: `${base}/${owner}/${name}`,
          },
        },
      });
    }
    if (req.method === "GET" && (m = /^\/repos\/([^/]+)\/([^/]+)$/.exec(path))) return answer(m[1]!, m[2]!, 200, repository(m[1]!, m[2]!));
    if (req.method === "GET" && (m = /^\/repos\/([^/]+)\/([^/]+)\/releases\/tags\/([^/]+)$/.exec(path))) {
      const [owner, repo, tag] = [m[1]!, m[2]!, decodeURIComponent(m[3]!)];
      return answer(owner, repo, 200, {
        id: 1, tag_name: tag, name: tag, draft: false, prerelease: false, assets: [], url: `${base}/repos/${owner}/${repo}/releases/1`,
        html_url: `${base}/${owner}/${repo}/releases/tag/${tag}`, upload_url: `${base}/uploads/repos/${owner}/${repo}/releases/1/assets{?name,label}`,
      });
    }
    if (req.method === "POST" && (m = /^\/uploads\/repos\/([^/]+)\/([^/]+)\/releases\/1\/assets$/.exec(path))) {
      const name = new URL(req.url ?? "/", base).searchParams.get("name") ?? "";
      const [owner, repo] = [m[1]!, m[2]!];
      if (this.accepts(token, owner, repo)) this.uploads.push({ owner, repo, name, bytes: body.length });
      return answer(owner, repo, 201, { id: 7, name, size: body.length, state: "uploaded", browser_download_url: `${base}/${owner}/${repo}/releases/download/v1/${name}` });
    }
    return send(404, { message: "Not Found" });
  }

  #newToken(): string {
    if (this.tokenFormat === "classic") return `ghs_${randomBytes(48).toString("base64url").replace(/[-_]/g, "x")}`;
    const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const head = part({ alg: "RS256", typ: "JWT", kid: "fake" });
    const body = (pad: string) => part({ iss: "github", sub: `installation/${randomBytes(4).toString("hex")}`, exp: Math.floor(Date.now() / 1000) + 3600, pad });
    const signature = randomBytes(256).toString("base64url");
    const fixed = `ghs_${head}.${body("")}.${signature}`.length;
    return `ghs_${head}.${body("x".repeat(Math.max(0, Math.floor(((this.statelessBytes - fixed) * 3) / 4))))}.${signature}`;
  }

  #installationBody(i: FakeInstallation) {
    return { id: i.id, account: { login: i.login, type: i.type ?? "Organization" }, app_id: this.appId };
  }

  #checkJwt(header: string | undefined): string | undefined {
    const match = /^bearer (.+)$/i.exec(header ?? "");
    if (!match?.[1]) return "A JSON web token could not be decoded";
    const jwt = match[1];
    this.jwts.push(jwt);
    const [h, p, s] = jwt.split(".");
    if (!h || !p || !s) return "A JSON web token could not be decoded";
    let headerJson: { alg?: string };
    let payload: { iss?: unknown; iat?: number; exp?: number };
    try {
      headerJson = JSON.parse(Buffer.from(h, "base64url").toString("utf8"));
      payload = JSON.parse(Buffer.from(p, "base64url").toString("utf8"));
    } catch {
      return "A JSON web token could not be decoded";
    }
    if (headerJson.alg !== "RS256") return "A JSON web token could not be decoded";
    if (!verify("RSA-SHA256", Buffer.from(`${h}.${p}`), this.publicKey, Buffer.from(s, "base64url"))) {
      return "A JSON web token could not be decoded";
    }
    if (String(payload.iss) !== String(this.appId)) return "Integration not found";
    const now = Math.floor((Date.now() + this.clockOffsetMs) / 1000);
    if (typeof payload.iat !== "number" || payload.iat > now + 60) {
      return "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued";
    }
    if (typeof payload.exp !== "number" || payload.exp <= now) {
      return "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires";
    }
    if (payload.exp - now > 600) return "'Expiration time' claim ('exp') is too far in the future";
    return undefined;
  }
}
