import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** Where a test run leaves what the audit and docs/reliability.md are made from. */
export const RESULTS_DIR = fileURLToPath(new URL("../../test-results", import.meta.url));
const MINTED = join(RESULTS_DIR, "minted-tokens.txt");
const HITS = join(RESULTS_DIR, "audit-hits.jsonl");
const SCANNED = join(RESULTS_DIR, "audit-scanned.txt");

function ensureDir(): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
}

/** Records a token a fake source issued to the keeper: it must never show up anywhere else. */
export function auditToken(token: string): void {
  ensureDir();
  appendFileSync(MINTED, `${token}\n`);
}

export function mintedTokens(): string[] {
  try {
    return readFileSync(MINTED, "utf8").split("\n").filter(Boolean);
  } catch {
    return [];
  }
}

export function recordHit(where: string, token: string): void {
  ensureDir();
  appendFileSync(HITS, `${JSON.stringify({ where, token: `${token.slice(0, 8)}…` })}\n`);
}

export function auditHits(): { where: string; token: string }[] {
  try {
    return readFileSync(HITS, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as { where: string; token: string });
  } catch {
    return [];
  }
}

export function scannedCount(): number {
  try {
    return readFileSync(SCANNED, "utf8").split("\n").filter(Boolean).reduce((n, l) => n + Number(l), 0);
  } catch {
    return 0;
  }
}

/** The shortest part of a token that counts as a leak. */
export const PART = 16;
const TOKEN_CHARS = /[A-Za-z0-9_.~+/=-]{16,}/g;
let indexed: { key: string; parts: Map<string, string> } = { key: "", parts: new Map() };

/**
 * Every 16-character part of the tokens, each mapped to its token. A part two different tokens
 * share is structure (the header of a JWT every token of a format starts with), not a secret.
 * The minted list only grows, so its length and last token identify it.
 */
function partsOf(tokens: string[]): Map<string, string> {
  const key = `${tokens.length}:${tokens.at(-1) ?? ""}`;
  if (indexed.key === key) return indexed.parts;
  const parts = new Map<string, string>();
  const shared = new Set<string>();
  for (const t of new Set(tokens)) {
    for (let i = 0; i + PART <= t.length; i++) {
      const part = t.slice(i, i + PART);
      const owner = parts.get(part);
      if (owner !== undefined && owner !== t) shared.add(part);
      else parts.set(part, t);
    }
  }
  for (const part of shared) parts.delete(part);
  indexed = { key, parts };
  return parts;
}

/** The tokens of which some part of 16 characters or more is in the text. */
export function leakedTokens(text: string, tokens: string[]): string[] {
  if (tokens.length === 0) return [];
  const parts = partsOf(tokens);
  const found = new Set<string>();
  for (const run of text.matchAll(TOKEN_CHARS)) {
    const r = run[0];
    for (let i = 0; i + PART <= r.length; i++) {
      const t = parts.get(r.slice(i, i + PART));
      if (t !== undefined) found.add(t);
    }
  }
  return [...found];
}

/** Searches a command's output (a CLI's status, doctor) for any part of a minted token. */
export function scanText(where: string, text: string, tokens = mintedTokens()): void {
  for (const t of leakedTokens(text, tokens)) recordHit(where, t);
}

// The state dir holds tokens by design; `*.secret` files are the tests' own credential stores
// (a GitLab token file the keeper rotates).
const EXEMPT = /(^|\/)state(\/|$)|\.secret$/;

/**
 * Searches every file under a folder (test repos, clones, keeper logs, .git/config) for any
 * part of 16 characters of the tokens minted so far; records each hit. Returns how many files
 * it read.
 */
export function scanTree(dir: string, tokens = mintedTokens(), onHit: (where: string, token: string) => void = recordHit, record = true): number {
  if (tokens.length === 0 || !existsSync(dir)) return 0;
  let files = 0;
  const walk = (path: string) => {
    let stat;
    try {
      stat = statSync(path, { throwIfNoEntry: false });
    } catch {
      return;
    }
    if (!stat || EXEMPT.test(path)) return;
    if (stat.isDirectory()) {
      for (const name of readdirSync(path)) walk(join(path, name));
    } else if (stat.isFile() && stat.size < 5_000_000) {
      files++;
      const text = readFileSync(path, "latin1");
      for (const t of leakedTokens(text, tokens)) onHit(path, t);
    }
  };
  walk(dir);
  if (record) {
    ensureDir();
    appendFileSync(SCANNED, `${files}\n`);
  }
  return files;
}
