import { createHash } from "node:crypto";

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

/** Replaces secrets in text: known token formats, JWTs, Authorization values, URL passwords, PEM blocks, and any registered value. */
export class Redactor {
  readonly #known = new Map<string, string>();

  /** Registers a secret whose format no pattern knows (a token of any shape); it is replaced by its fingerprint. */
  addSecret(secret: string): void {
    if (secret.length >= 8) this.#known.set(secret, `[redacted ${fingerprint(secret)}]`);
  }

  forgetSecret(secret: string): void {
    this.#known.delete(secret);
  }

  redact(text: string): string {
    let out = text;
    for (const [secret, replacement] of this.#known) {
      if (out.includes(secret)) out = out.split(secret).join(replacement);
    }
    for (const [pattern, replace] of PATTERNS) out = out.replace(pattern, replace as (m: string) => string);
    return out;
  }

  /** Redacts every string inside a log record, keys included. */
  redactValue(value: unknown, depth = 0): unknown {
    if (typeof value === "string") return this.redact(value);
    if (depth > 6 || value === null || typeof value !== "object") return value;
    if (value instanceof Error) return this.redact(value.stack ?? value.message);
    if (Array.isArray(value)) return value.map((v) => this.redactValue(v, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[this.redact(k)] = this.redactValue(v, depth + 1);
    return out;
  }
}
