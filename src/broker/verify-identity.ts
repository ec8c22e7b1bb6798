import { readSecretFile } from "../providers/settings/read-secret.ts";
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";
import type { Identity } from "../config/broker-config.ts";

/** What a verified identity token says, and which configured identity it proved. */
export interface VerifiedIdentity {
  identity: Identity;
  claims: JWTPayload;
}

export type Verification = { ok: true; verified: VerifiedIdentity } | { ok: false; reason: string; issuer?: string | undefined; subject?: string | undefined };

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

/**
 * Verifies identity JWTs strictly against the configured issuers: signature by the issuer's
 * keys (JWKS from its URL, a file, or its discovery document; nothing a token's header names is
 * ever fetched or trusted), `iss` exact, `aud` containing the audience, `exp` required,
 * `exp`/`nbf`/`iat` within 60 s of skew, no claim or header parameter twice, no unknown `crit`.
 */
export class IdentityVerifier {
  readonly #identities: Identity[];
  readonly #keys = new Map<string, Promise<JWTVerifyGetKey>>();
  readonly #now: () => number;

  constructor(identities: Identity[], options: { now?: () => number } = {}) {
    this.#identities = identities;
    this.#now = options.now ?? Date.now;
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
    for (const identity of candidates) {
      try {
        const keys = await this.#keysFor(identity);
        const { payload: claims } = await jwtVerify(token, keys, {
          issuer: identity.issuer,
          audience: identity.audience,
          algorithms: ALGORITHMS,
          clockTolerance: SKEW_S,
          requiredClaims: ["exp"],
          currentDate: new Date(this.#now()),
        });
        if (typeof claims.iat === "number" && claims.iat > this.#now() / 1000 + SKEW_S) throw new Error("identity token issued in the future");
        return { ok: true, verified: { identity, claims } };
      } catch (error) {
        if (error instanceof errors.JWTClaimValidationFailed && error.claim === "aud") audienceMiss = describe(error);
        else last = describe(error);
      }
    }
    return { ok: false, reason: last || audienceMiss, issuer, subject };
  }

  #keysFor(identity: Identity): Promise<JWTVerifyGetKey> {
    let keys = this.#keys.get(identity.name);
    if (!keys) {
      keys = this.#loadKeys(identity);
      this.#keys.set(identity.name, keys);
      // A failed discovery is tried again on the next request, not remembered.
      keys.catch(() => this.#keys.delete(identity.name));
    }
    return keys;
  }

  async #loadKeys(identity: Identity): Promise<JWTVerifyGetKey> {
    if (identity.jwksFile) return createLocalJWKSet(JSON.parse(readSecretFile(identity.jwksFile, "utf8")));
    let jwksUrl = identity.jwksUrl;
    if (!jwksUrl) {
      const discovery = `${identity.issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
      const response = await fetch(discovery, { signal: AbortSignal.timeout(10_000), redirect: "error" });
      if (!response.ok) throw new Error(`discovery at ${discovery} answered ${response.status}`);
      const doc = (await response.json()) as { issuer?: unknown; jwks_uri?: unknown };
      if (doc.issuer !== identity.issuer) throw new Error(`discovery at ${discovery} names issuer ${String(doc.issuer)}, not ${identity.issuer}`);
      if (typeof doc.jwks_uri !== "string") throw new Error(`discovery at ${discovery} has no jwks_uri`);
      jwksUrl = doc.jwks_uri;
    }
    return createRemoteJWKSet(new URL(jwksUrl), { cooldownDuration: identity.jwksCooldownMs, timeoutDuration: 10_000 });
  }
}

function describe(error: unknown): string {
  if (error instanceof errors.JWTExpired) return "identity token expired";
  if (error instanceof errors.JWTClaimValidationFailed) return `identity token's ${error.claim} claim is not acceptable (${error.reason})`;
  if (error instanceof errors.JWSSignatureVerificationFailed) return "identity token's signature does not verify";
  if (error instanceof errors.JWKSNoMatchingKey) return "no key of the issuer matches the identity token's kid and alg";
  if (error instanceof errors.JOSEAlgNotAllowed) return "identity token's alg is not allowed (asymmetric signatures only)";
  if (error instanceof errors.JOSENotSupported) return `identity token uses something not supported: ${error.message}`;
  if (error instanceof errors.JWTInvalid || error instanceof errors.JWSInvalid) return `identity token is malformed: ${error.message}`;
  return `identity token not verified: ${error instanceof Error ? error.message : String(error)}`;
}
