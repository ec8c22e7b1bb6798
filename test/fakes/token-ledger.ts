import { randomBytes } from "node:crypto";
import { auditToken } from "../support/secrets-audit.ts";

/**
 * Tokens the fake token sources (Entra ID, GitLab, a token service, a script) issued, for the
 * git server to accept: each live until it expires or is revoked, for one owner or for any.
 */
export class TokenLedger {
  readonly #tokens = new Map<string, { owner: string | undefined; expiresAt: number; revoked: boolean }>();
  readonly issued: string[] = [];
  /** Whether issued tokens join the secrets audit. */
  audit = true;

  issue(options: { lifetimeMs: number; owner?: string; prefix?: string; token?: string }): { token: string; expiresAt: number } {
    const token = options.token ?? `${options.prefix ?? "tok_"}${randomBytes(24).toString("base64url").replace(/[-_]/g, "x")}`;
    const expiresAt = Date.now() + options.lifetimeMs;
    this.#tokens.set(token, { owner: options.owner?.toLowerCase(), expiresAt, revoked: false });
    this.issued.push(token);
    if (this.audit) auditToken(token);
    return { token, expiresAt };
  }

  revokeAll(): void {
    for (const t of this.#tokens.values()) t.revoked = true;
  }

  revoke(token: string): void {
    const t = this.#tokens.get(token);
    if (t) t.revoked = true;
  }

  accepts(token: string, owner: string): boolean {
    const t = this.#tokens.get(token);
    return !!t && !t.revoked && Date.now() < t.expiresAt && (t.owner === undefined || t.owner === owner.toLowerCase());
  }
}
