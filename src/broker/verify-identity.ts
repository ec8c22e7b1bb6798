import { errors, jwtVerify, type JWTPayload } from "jose";
import type { Identity } from "../config/broker-config.ts";
import { formatDuration } from "../providers/settings/duration.ts";
import { IssuerKeys, KeysUnavailable, type IdentityKeyStatus } from "./issuer-keys.ts";

export type { IdentityKeyStatus } from "./issuer-keys.ts";

/** What a verified identity token says, and which configured identity it proved. */
export interface VerifiedIdentity {
  identity: Identity;
  claims: JWTPayload;
}

/** The token is refused: it does not prove a configured identity (the server answers 401). */
export interface Refused {
  ok: false;
  unavailable?: undefined;
  reason: string;
  issuer?: string | undefined;
  subject?: string | undefined;
}

/**
 * Neither valid nor invalid: the identity's issuer has no keys to check it with (never fetched,
 * or the last good ones are older than staleKeysFor). The server answers 503 with Retry-After.
 */
export interface Unavailable {
  ok: false;
  unavailable: true;
  reason: string;
  /** Until the issuer's keys may be fetched again; at least 1 s. */
  retryAfterMs: number;
  issuer: string | undefined;
  subject: string | undefined;
}

export type Verification = { ok: true; verified: VerifiedIdentity } | Refused | Unavailable;

/** Asymmetric algorithms real issuers sign with. Never `none`, never an HMAC. */
const ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"];
const MAX_TOKEN_CHARS = 8192;
const isString = (v: unknown) => typeof v === "string";
const isTime = (v: unknown) => typeof v === "number" && Number.isFinite(v);
const CLAIM_TYPES: Record<string, (v: unknown) => boolean> = {
  iss: isString,
  sub: isString,
  jti: isString,
  aud: (v) => isString(v) || (Array.isArray(v) && v.every(isString)),
  exp: isTime,
  nbf: isTime,
  iat: isTime,
};
const SKEW_S = 60;

/**
 * Top-level keys of a JSON object's text that occur twice (JSON.parse keeps the last one
 * silently; a verifier that reads the first would disagree with one that reads the last).
 */
export function duplicateKeys(json: string): string[] {
  const seen = new Set<string>();
  const dupes: string[] = [];
  let depth = 0;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '"') {
      let j = i + 1;
      let s = "";
      while (j < json.length && json[j] !== '"') {
        if (json[j] === "\\") {
          s += json.slice(j, j + 2);
          j += 2;
        } else s += json[j++];
      }
      // A key: a string at depth 1 followed by a colon.
      let k = j + 1;
      while (k < json.length && /\s/.test(json[k] as string)) k++;
      if (depth === 1 && json[k] === ":") {
        const key = JSON.parse(`"${s}"`) as string;
        if (seen.has(key)) dupes.push(key);
        seen.add(key);
      }
      i = j;
    } else if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") depth--;
  }
  return dupes;
}

function decodePart(part: string): string | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(part)) return undefined;
  return Buffer.from(part, "base64url").toString("utf8");
}

/** A refusal whose message is the reason, as it is. */
class ClaimRefusal extends Error {}

/**
 * Verifies identity JWTs strictly against the configured issuers: signature by the issuer's
 * keys (JWKS from its URL, a file, or its discovery document; nothing a token's header names is
 * ever fetched or trusted), `iss` exact, `aud` containing the audience, `exp` and `iat` required,
 * `exp`/`nbf`/`iat` within 60 s of skew, `iat` within maxIdentityAge, no claim or header
 * parameter twice, no unknown `crit`. Each identity's keys are held by an IssuerKeys.
 */
export class IdentityVerifier {
  readonly #identities: Identity[];
  readonly #keys = new Map<string, IssuerKeys>();
  readonly #now: () => number;

  constructor(identities: Identity[], options: { now?: () => number; previous?: IdentityVerifier } = {}) {
    this.#identities = identities;
    this.#now = options.now ?? Date.now;
    for (const identity of identities) {
      // A reload keeps the keys (and their age, cooldown and staleness) of identities it did
      // not change: an issuer down at the time keeps verifying on its last good keys.
      const kept = options.previous ? options.previous.#keys.get(identity.name) : undefined;
      this.#keys.set(identity.name, kept && JSON.stringify(kept.identity) === JSON.stringify(identity) ? kept : new IssuerKeys(identity, this.#now));
    }
  }

  /** Each identity's keys: loaded, how old, how many fetches failed and why the last one did. */
  status(): IdentityKeyStatus[] {
    return [...this.#keys.values()].map((keys) => keys.status());
  }

  /** Fetches the keys of every identity that has none or old ones (each within its cooldown). */
  async prefetch(): Promise<void> {
    await Promise.all([...this.#keys.values()].map((keys) => keys.prefetch()));
  }

  async verify(token: string): Promise<Verification> {
    if (token.length > MAX_TOKEN_CHARS) return { ok: false, reason: `identity token longer than ${MAX_TOKEN_CHARS} characters` };
    const parts = token.split(".");
    if (parts.length !== 3) return { ok: false, reason: "identity token is not a signed JWT (three dot-separated parts)" };
    const headerText = decodePart(parts[0] as string);
    const payloadText = decodePart(parts[1] as string);
    if (headerText === undefined || payloadText === undefined) return { ok: false, reason: "identity token is not base64url" };
    let payload: Record<string, unknown>;
    try {
      const header = JSON.parse(headerText) as unknown;
      payload = JSON.parse(payloadText) as Record<string, unknown>;
      if (!header || typeof header !== "object" || Array.isArray(header) || !payload || typeof payload !== "object" || Array.isArray(payload)) throw new Error("not objects");
    } catch {
      return { ok: false, reason: "identity token's header or claims are not JSON objects" };
    }
    const dupes = [...duplicateKeys(headerText).map((k) => `header ${k}`), ...duplicateKeys(payloadText).map((k) => `claim ${k}`)];
    if (dupes.length) return { ok: false, reason: `identity token gives ${dupes.join(", ")} twice` };
    // Registered claims of the wrong type are refused, never coerced (a numeric sub is not "42").
    const wrongType = Object.entries(CLAIM_TYPES).find(([name, ok]) => Object.hasOwn(payload, name) && !ok(payload[name]));
    if (wrongType) return { ok: false, reason: `identity token's ${wrongType[0]} claim has the wrong type` };
    const issuer = typeof payload.iss === "string" ? payload.iss : undefined;
    const subject = typeof payload.sub === "string" ? payload.sub : undefined;
    const candidates = this.#identities.filter((i) => i.issuer === issuer);
    if (candidates.length === 0) return { ok: false, reason: "identity token's issuer is not configured", issuer, subject };
    // Identities may share an issuer (one audience each): the reason given is that of the
    // identity whose audience the token is for, when one is.
    let last = "";
    let audienceMiss = "";
    let unavailable: KeysUnavailable | undefined;
    for (const identity of candidates) {
      const keys = this.#keys.get(identity.name) as IssuerKeys;
      try {
        const { payload: claims } = await jwtVerify(token, (header, jws) => keys.getKey(header, jws), {
          issuer: identity.issuer,
          audience: identity.audience,
          algorithms: ALGORITHMS,
          clockTolerance: SKEW_S,
          requiredClaims: ["exp"],
          currentDate: new Date(this.#now()),
        });
        const nowS = this.#now() / 1000;
        if (typeof claims.iat !== "number") throw new ClaimRefusal("identity token has no iat claim (when it was issued), which maxIdentityAge needs");
        if (claims.iat > nowS + SKEW_S) throw new ClaimRefusal("identity token issued in the future");
        if (nowS - claims.iat > identity.maxIdentityAgeMs / 1000) {
          throw new ClaimRefusal(`identity token is older than maxIdentityAge (${short(identity.maxIdentityAgeMs)}; issued ${short((nowS - claims.iat) * 1000)} ago)`);
        }
        return { ok: true, verified: { identity, claims } };
      } catch (error) {
        if (error instanceof KeysUnavailable) unavailable ??= error;
        else if (error instanceof errors.JWTClaimValidationFailed && error.claim === "aud") audienceMiss = describe(error);
        else last = describe(error);
      }
    }
    // Without keys nothing is known about the token, unless another identity found it bad.
    if (unavailable && !last) return { ok: false, unavailable: true, reason: unavailable.message, retryAfterMs: unavailable.retryAfterMs, issuer, subject };
    return { ok: false, reason: last || audienceMiss, issuer, subject };
  }
}

/** `24h`, `1h30m`, `45s`: formatDuration without its zero tails. */
function short(ms: number): string {
  return formatDuration(ms).replace(/(\d)h0m0s$/, "$1h").replace(/(\d)m0s$/, "$1m");
}

function describe(error: unknown): string {
  if (error instanceof ClaimRefusal) return error.message;
  if (error instanceof errors.JWTExpired) return "identity token expired";
  if (error instanceof errors.JWTClaimValidationFailed) return `identity token's ${error.claim} claim is not acceptable (${error.reason})`;
  if (error instanceof errors.JWSSignatureVerificationFailed) return "identity token's signature does not verify";
  if (error instanceof errors.JWKSNoMatchingKey) return "no key of the issuer matches the identity token's kid and alg";
  if (error instanceof errors.JOSEAlgNotAllowed) return "identity token's alg is not allowed (asymmetric signatures only)";
  if (error instanceof errors.JOSENotSupported) return `identity token uses something not supported: ${error.message}`;
  if (error instanceof errors.JWTInvalid || error instanceof errors.JWSInvalid) return `identity token is malformed: ${error.message}`;
  return `identity token not verified: ${error instanceof Error ? error.message : String(error)}`;
}
