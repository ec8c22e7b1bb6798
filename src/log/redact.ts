import { createHash } from "node:crypto";
import { KnownSecrets, type MatchWork } from "./known-secrets.ts";

/** A short, stable, non-reversible name for a token, safe to log. */
export function fingerprint(token: string): string {
  return `sha256:${createHash("sha256").update(token).digest("hex").slice(0, 12)}`;
}

// Patterns of secrets that must never reach a log, whatever their length.
const PATTERNS: readonly [RegExp, (match: string, ...groups: string[]) => string][] = [
  [/-----BEGIN [A-Z0-9 ]*-----[\s\S]*?(?:-----END [A-Z0-9 ]*-----|$)/g, () => "[redacted PEM block]"],
  [/\b(authorization\s*[:=]\s*)(?:(basic|bearer|token)\s+)?[^\s"',;]+/gi, (_m, prefix, scheme) =>
    `${prefix}${scheme ? `${scheme} ` : ""}[redacted]`],
  // A known prefix and everything after it that any token format may hold (letters, digits,
  // `_`, `-`, `.`): GitHub's stateless installation tokens are `ghs_` followed by a signed JWT,
  // dots included, which a pattern stopping at the first dot would leave half in the log.
  [/\b(?:gh[pousr]_|github_pat_)[A-Za-z0-9_.-]+/g, (m) => `[redacted ${fingerprint(m)}]`],
  // JWTs (Entra ID, Kubernetes, OIDC), also inside a longer word: no word boundary needed.
  [/eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, () => "[redacted JWT]"],
  // GitLab: personal/project/group, OAuth app secrets, runner (and its registration), runner
  // authentication, CI build, deploy, pipeline trigger, feed, incoming mail, agent, feature flag
  // client, SCIM and service account tokens; the legacy runner registration prefix.
  [/\b(glpat-|gloas-|glrt-|glrtr-|glcbt-|gldt-|glptt-|glft-|glimt-|glagent-|glffct-|gltst-|glsoat-|GR1348941)[A-Za-z0-9_.-]+/g, (m) => `[redacted ${fingerprint(m)}]`],
  // Azure DevOps personal access tokens of the 84-character format (AZDO at 77-80).
  [/\b[A-Za-z0-9]{76}AZDO[A-Za-z0-9]{4}\b/g, (m) => `[redacted ${fingerprint(m)}]`],
  [/(\b[a-z][a-z0-9+.-]*:\/\/)([^\s/@:"']*):([^\s/@"']*)@/gi, (_m, scheme, user) => `${scheme}${user}:[redacted]@`],
  [/\b(password|token|access_token|refresh_token|client_secret)=([^\s&"']+)/gi, (_m, key) => `${key}=[redacted]`],
];

/** How long after its expiry a token is still redacted: a late error message may quote it, a host's clock may lag. */
export const SECRET_GRACE_MS = 10 * 60_000;

/** The most secrets a redactor keeps: past it, those expiring first are forgotten. */
export const MAX_SECRETS = 50_000;

/** A log value that is kept as it is, but for registered secrets: made by `verbatim`. */
export class Verbatim {
  readonly #value: unknown;

  constructor(value: unknown) {
    this.#value = value;
  }

  get value(): unknown {
    return this.#value;
  }

  // Should a wrapper reach a serialiser unredacted (createLogger's never do), it is written as its value, not as `{}`.
  toJSON(): unknown {
    return this.#value;
  }
}

/**
 * Marks a field of a log record (a string, or objects and arrays of them) to be logged exactly
 * as it is except for registered secrets: no pattern applies to it. For values whose shape a
 * pattern would take for a secret while they are not one, such as verified identity-token claims
 * (`sub: "repo:acme/app:ref:refs/heads/main"`, a claim that looks like a JWT or holds `token=`).
 * Wrap a field's value, not the whole metadata object: `log.info("x", { claims: verbatim(c) })`.
 */
export function verbatim(value: unknown): Verbatim {
  return new Verbatim(value);
}

export interface RedactorOptions {
  /** The clock that secrets' expiries are read against, in epoch milliseconds (tests set one). */
  now?: () => number;
  /** The most secrets kept; past it, those expiring first are forgotten. */
  maxSecrets?: number;
}

const replacementFor = (secret: string) => `[redacted ${fingerprint(secret)}]`;

/** Replaces secrets in text: known token formats, JWTs, Authorization values, URL passwords, PEM blocks, and any registered value. */
export class Redactor {
  readonly #known: KnownSecrets;
  readonly #now: () => number;

  constructor(options: RedactorOptions = {}) {
    const { now = Date.now, maxSecrets = MAX_SECRETS } = options;
    if (typeof now !== "function") throw new TypeError(`Expected the \`now\` option to be a function, got \`${String(now)}\` (${typeof now})`);
    if (!Number.isSafeInteger(maxSecrets) || maxSecrets < 1) {
      throw new TypeError(`Expected the \`maxSecrets\` option to be a positive integer, got \`${String(maxSecrets)}\` (${typeof maxSecrets})`);
    }
    this.#now = now;
    this.#known = new KnownSecrets(maxSecrets);
  }

  /**
   * Registers a secret whose format no pattern knows (a token of any shape); it is replaced by its
   * fingerprint. Secrets shorter than 8 characters are ignored. With `expiresAtMs` (epoch ms) it is
   * forgotten once that time has passed; registered again, it keeps the later of its expiries.
   */
  addSecret(secret: string, expiresAtMs?: number): void {
    // An expiry that is not a time keeps the secret rather than dropping it.
    this.#known.add(secret, expiresAtMs === undefined || Number.isNaN(expiresAtMs) ? Number.POSITIVE_INFINITY : expiresAtMs);
    this.#known.prune(this.#now());
  }

  forgetSecret(secret: string): void {
    this.#known.delete(secret);
  }

  /** How many secrets are registered now. */
  get secretCount(): number {
    this.#known.prune(this.#now());
    return this.#known.size;
  }

  /** The matching work done so far (lookups, comparisons): for tests and benchmarks, it must not grow with the number of secrets. */
  get work(): Readonly<MatchWork> {
    return { ...this.#known.work };
  }

  redact(text: string): string {
    this.#known.prune(this.#now());
    return this.#redactString(text, false);
  }

  /** Redacts every string inside a log record, keys included; a `verbatim` value only of registered secrets. */
  redactValue(value: unknown): unknown {
    this.#known.prune(this.#now());
    return this.#redactValue(value, 0, false);
  }

  #redactString(text: string, knownOnly: boolean): string {
    let out = this.#known.replaceIn(text, replacementFor);
    if (knownOnly) return out;
    for (const [pattern, replace] of PATTERNS) out = out.replace(pattern, replace as (m: string) => string);
    return out;
  }

  #redactValue(value: unknown, depth: number, knownOnly: boolean): unknown {
    if (value instanceof Verbatim) return this.#redactValue(value.value, depth, true);
    if (typeof value === "string") return this.#redactString(value, knownOnly);
    if (depth > 6 || value === null || typeof value !== "object") return value;
    if (value instanceof Error) return this.#redactString(value.stack ?? value.message, knownOnly);
    if (Array.isArray(value)) return value.map((v) => this.#redactValue(v, depth + 1, knownOnly));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[this.#redactString(k, knownOnly)] = this.#redactValue(v, depth + 1, knownOnly);
    return out;
  }
}
