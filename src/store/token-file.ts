/** What the helper reads: one `key=value` per line, so plain sh can parse it with `read`. */
export interface TokenRecord {
  token: string;
  username: string;
  /** Epoch seconds. */
  expires: number;
  /** Epoch seconds after which the daemon will have replaced it. */
  refreshAt: number;
  /**
   * Epoch seconds from which it is no longer handed out: its expiry less a safety margin
   * (servingMargin), judged by the wall clock when it is served. Older files have none: their
   * expiry counts.
   */
  serveUntil?: number | undefined;
  /** The same in milliseconds: the helper judges a token of a few seconds to the millisecond. */
  serveUntilMs?: number | undefined;
  mintedAt: number;
  /** Grows by one with every mint of this scope; the helper quotes it when a token is refused. */
  serial: number;
  /** Fingerprint of the provider's settings: a token is resumed after a restart only under the same ones. */
  config?: string | undefined;
  /** `Bearer`: git ≥ 2.46 may send it as a bearer token (authtype), older gits as Basic. */
  authtype?: "Bearer" | undefined;
}

export function formatTokenRecord(r: TokenRecord): string {
  if (typeof r.token !== "string" || !r.token || /[\s]/.test(r.token) || /[\r\n]/.test(r.username)) {
    throw new Error("a token must be one non-empty word, and a username one line");
  }
  const config = r.config ? `config=${r.config}\n` : "";
  const authtype = r.authtype ? `authtype=${r.authtype}\n` : "";
  const serveUntil = (r.serveUntil === undefined ? "" : `serve_until=${r.serveUntil}\n`) + (r.serveUntilMs === undefined ? "" : `serve_until_ms=${r.serveUntilMs}\n`);
  return `token=${r.token}\nusername=${r.username}\nexpires=${r.expires}\n${serveUntil}refresh_at=${r.refreshAt}\nminted=${r.mintedAt}\nserial=${r.serial}\n${authtype}${config}`;
}

export function parseTokenRecord(text: string): TokenRecord | undefined {
  const fields = new Map<string, string>();
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) fields.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const token = fields.get("token");
  const username = fields.get("username");
  const numbers = ["expires", "refresh_at", "minted", "serial"].map((k) => Number(fields.get(k)));
  if (!token || !username || numbers.some((n) => !Number.isFinite(n))) return undefined;
  const [expires, refreshAt, mintedAt, serial] = numbers as [number, number, number, number];
  const until = Number(fields.get("serve_until"));
  const serveUntil = fields.has("serve_until") && Number.isFinite(until) ? Math.min(until, expires) : undefined;
  const untilMs = Number(fields.get("serve_until_ms"));
  const serveUntilMs = fields.has("serve_until_ms") && Number.isFinite(untilMs) ? untilMs : undefined;
  return { token, username, expires, refreshAt, mintedAt, serial, serveUntil, serveUntilMs, config: fields.get("config"), authtype: fields.get("authtype") === "Bearer" ? "Bearer" : undefined };
}

/** Until when a token is handed out, in epoch seconds: serve_until, else its expiry. */
export function servedUntil(r: TokenRecord): number {
  return r.serveUntil ?? r.expires;
}

/**
 * How long before its expiry a token stops being handed out: 10 s, or a quarter of its life for
 * a token shorter than 40 s. git may take seconds between asking for a credential and its last
 * request with it, and the host's clock is not exactly this one.
 */
export const SERVING_MARGIN_MS = 10_000;

export function servingMargin(lifetimeMs: number): number {
  return Math.min(SERVING_MARGIN_MS, Math.max(0, lifetimeMs) / 4);
}
