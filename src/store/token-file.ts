/** What the helper reads: one `key=value` per line, so plain sh can parse it with `read`. */
export interface TokenRecord {
  token: string;
  username: string;
  /** Epoch seconds. */
  expires: number;
  /** Epoch seconds after which the daemon will have replaced it. */
  refreshAt: number;
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
  return `token=${r.token}\nusername=${r.username}\nexpires=${r.expires}\nrefresh_at=${r.refreshAt}\nminted=${r.mintedAt}\nserial=${r.serial}\n${authtype}${config}`;
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
  return { token, username, expires, refreshAt, mintedAt, serial, config: fields.get("config"), authtype: fields.get("authtype") === "Bearer" ? "Bearer" : undefined };
}
