import { randomBytes } from "node:crypto";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { closeServer, listenOnLoopback, readText, sendJson } from "./http-helpers.ts";
import type { TokenLedger } from "./token-ledger.ts";

/**
 * A local GitLab for the token endpoints: the OAuth2 refresh_token grant, where a refresh
 * invalidates the old access token and the old refresh token (single use, as GitLab does), and
 * access-token self-rotation, which revokes the token it rotates.
 */
export class FakeGitLab {
  readonly ledger: TokenLedger;
  clientId = "gitlab-oauth-app";
  tokenLifetimeMs: number;
  /** Refresh tokens that may be used, each once. */
  readonly liveRefreshTokens = new Set<string>();
  readonly refreshLog: { presented: string; accepted: boolean }[] = [];
  rotations = 0;
  /** While set, a refresh is accepted (its token used up) but answered only once this settles. */
  holdAnswers: Promise<void> | undefined;
  #accessForRefresh = new Map<string, string>();
  #server: Server | undefined;
  url = "";

  constructor(ledger: TokenLedger, tokenLifetimeMs: number) {
    this.ledger = ledger;
    this.tokenLifetimeMs = tokenLifetimeMs;
  }

  async start(): Promise<void> {
    ({ server: this.#server, url: this.url } = await listenOnLoopback((req, res) => void this.#handle(req, res)));
  }

  async stop(): Promise<void> {
    await closeServer(this.#server);
  }

  /** The first refresh token, as a user gets it from the authorization flow. */
  firstRefreshToken(): string {
    const token = `rt-${randomBytes(16).toString("hex")}`;
    this.liveRefreshTokens.add(token);
    return token;
  }

  /** A first access token to rotate (days long, as GitLab's are). */
  firstAccessToken(): string {
    return this.ledger.issue({ lifetimeMs: 86_400_000, prefix: "glpat-" }).token;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const form = new URLSearchParams(await readText(req));
    if (req.method === "POST" && url.pathname === "/oauth/token") {
      const presented = form.get("refresh_token") ?? "";
      const accepted = form.get("grant_type") === "refresh_token" && form.get("client_id") === this.clientId && this.liveRefreshTokens.has(presented);
      this.refreshLog.push({ presented, accepted });
      if (!accepted) return sendJson(res, 400, { error: "invalid_grant", error_description: "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client." });
      this.liveRefreshTokens.delete(presented);
      if (this.holdAnswers) await this.holdAnswers;
      const old = this.#accessForRefresh.get(presented);
      if (old) this.ledger.revoke(old);
      const access = this.ledger.issue({ lifetimeMs: this.tokenLifetimeMs, prefix: "gloas-" }).token;
      const next = `rt-${randomBytes(16).toString("hex")}`;
      this.liveRefreshTokens.add(next);
      this.#accessForRefresh.set(next, access);
      return sendJson(res, 200, { access_token: access, token_type: "Bearer", expires_in: Math.round(this.tokenLifetimeMs / 1000), refresh_token: next, created_at: Math.floor(Date.now() / 1000) });
    }
    const rotate = /^\/api\/v4\/(personal_access_tokens|projects\/[^/]+\/access_tokens|groups\/[^/]+\/access_tokens)\/self\/rotate$/.exec(url.pathname);
    if (req.method === "POST" && rotate) {
      const current = String(req.headers["private-token"] ?? "");
      if (!this.ledger.accepts(current, "any")) return sendJson(res, 401, { message: "401 Unauthorized" });
      this.ledger.revoke(current);
      this.rotations++;
      const { token } = this.ledger.issue({ lifetimeMs: this.tokenLifetimeMs, prefix: "glpat-" });
      // GitLab answers a date; the fake's short-lived tokens need a precise time, which its
      // expires_at also carries (GitLab's date form is read the same way).
      return sendJson(res, 200, { id: this.rotations, token, expires_at: new Date(Date.now() + this.tokenLifetimeMs).toISOString(), active: true, revoked: false });
    }
    sendJson(res, 404, { message: "404 Not Found" });
  }
}
