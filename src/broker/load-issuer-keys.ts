import type { JSONWebKeySet } from "jose";
import type { Identity } from "../config/broker-config.ts";
import { apiRequest, type ApiAnswer } from "../providers/api-request.ts";
import { readSecretFile } from "../providers/settings/read-secret.ts";
import { VERSION } from "../version.ts";
import { insecureKeyUrl } from "./insecure-key-url.ts";

const TIMEOUT_MS = 10_000;
/** A discovery document or a JWKS is a few kilobytes. */
const MAX_BYTES = 1_000_000;

/** An issuer's keys as read, and the JWKS URL discovery found (kept to skip it next time). */
export interface LoadedKeys {
  jwks: JSONWebKeySet;
  discoveredJwksUrl: string | undefined;
}

/**
 * Reads one identity's JWKS: from its jwksFile, its jwksUrl, or the `jwks_uri` of the issuer's
 * discovery document (skipped when `discoveredJwksUrl` says where it is). Throws an Error whose
 * message says what failed; it never holds the jwksTokenFile token.
 */
export async function loadIssuerKeys(identity: Identity, discoveredJwksUrl?: string): Promise<LoadedKeys> {
  if (identity.jwksFile) return { jwks: parseJwks(readSecretFile(identity.jwksFile, "utf8"), identity.jwksFile), discoveredJwksUrl: undefined };
  const discovered = identity.jwksUrl ? undefined : (discoveredJwksUrl ?? (await discover(identity)));
  const url = identity.jwksUrl ?? (discovered as string);
  return { jwks: parseJwks(await getText(identity, url, "the JWKS"), url), discoveredJwksUrl: discovered };
}

async function discover(identity: Identity): Promise<string> {
  const url = `${identity.issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
  if (insecureKeyUrl(url)) throw new Error(`discovery at ${url} would be plain http:// off loopback; set jwksUrl (https://) or jwksFile`);
  let doc: { issuer?: unknown; jwks_uri?: unknown };
  try {
    doc = JSON.parse(await getText(identity, url, "discovery")) as typeof doc;
  } catch (error) {
    if (error instanceof SyntaxError) throw new Error(`discovery at ${url} is not JSON`);
    throw error;
  }
  if (doc?.issuer !== identity.issuer) throw new Error(`discovery at ${url} names issuer ${String(doc?.issuer).slice(0, 200)}, not ${identity.issuer}`);
  const jwksUri = doc.jwks_uri;
  if (typeof jwksUri !== "string") throw new Error(`discovery at ${url} has no jwks_uri`);
  const shown = jwksUri.slice(0, 200);
  if (insecureKeyUrl(jwksUri)) {
    throw new Error(`discovery at ${url} names jwks_uri '${shown}', plain http:// off loopback (anyone on the path could swap the keys); not fetched: set jwksUrl to an https:// URL`);
  }
  if (!URL.canParse(jwksUri) || !/^https?:$/.test(new URL(jwksUri).protocol)) throw new Error(`discovery at ${url} names jwks_uri '${shown}', which is not an https:// URL`);
  return jwksUri;
}

/**
 * One GET with the identity's jwksTokenFile (re-read each time: a projected service-account
 * token rotates) and jwksCaFile. Redirects are refused rather than followed, so the token goes
 * to the configured or discovered URL and nowhere else.
 */
async function getText(identity: Identity, url: string, what: string): Promise<string> {
  const headers: Record<string, string> = { accept: "application/json", "user-agent": `git-token-keeper/${VERSION}` };
  if (identity.jwksTokenFile) headers.authorization = `Bearer ${readToken(identity.jwksTokenFile)}`;
  const tls = identity.jwksCaFile ? { ca: readFile(identity.jwksCaFile, "jwksCaFile") } : undefined;
  let answer: ApiAnswer;
  try {
    answer = await apiRequest(url, { method: "GET", headers, timeoutMs: TIMEOUT_MS, tls, maxBytes: MAX_BYTES });
  } catch (error) {
    throw new Error(`${what} at ${url}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  const { status } = answer;
  if (status >= 300 && status < 400) throw new Error(`${what} at ${url} answered ${status}, a redirect, which is not followed; configure the URL it points to`);
  if (status === 401 || status === 403) {
    const hint = identity.jwksTokenFile ? "the jwksTokenFile token was refused" : "it serves only authenticated callers (a Kubernetes API server does): set jwksTokenFile";
    throw new Error(`${what} at ${url} answered ${status}: ${hint}`);
  }
  if (status !== 200) throw new Error(`${what} at ${url} answered ${status}`);
  return answer.body.toString("utf8");
}

function readToken(file: string): string {
  const token = readFile(file, "jwksTokenFile").toString("utf8").trim();
  if (!token) throw new Error(`jwksTokenFile '${file}' is empty`);
  if (/\s/.test(token)) throw new Error(`jwksTokenFile '${file}' holds more than one word; it must hold the token alone`);
  return token;
}

function readFile(file: string, key: string): Buffer {
  try {
    return readSecretFile(file);
  } catch (error) {
    throw new Error(`${key}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

function parseJwks(text: string, from: string): JSONWebKeySet {
  let jwks: unknown;
  try {
    jwks = JSON.parse(text);
  } catch {
    throw new Error(`the JWKS from ${from} is not JSON`);
  }
  const keys = (jwks as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) throw new Error(`the JWKS from ${from} has no "keys" list`);
  // An empty set would refuse every token; the last good keys are worth more than it.
  if (keys.length === 0) throw new Error(`the JWKS from ${from} lists no keys`);
  return jwks as JSONWebKeySet;
}
