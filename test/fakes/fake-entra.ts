import { randomBytes } from "node:crypto";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { constants, verify, X509Certificate } from "node:crypto";
import type { AddressInfo } from "node:net";
import { readText, sendJson } from "./http-helpers.ts";
import type { TokenLedger } from "./token-ledger.ts";

export const AZURE_DEVOPS_SCOPE = "499b84ac-1321-427f-aa17-267ca6975798/.default";

/**
 * A local Entra ID: the App Service managed identity endpoint (IDENTITY_ENDPOINT, checks
 * X-IDENTITY-HEADER) over loopback HTTP, and an OAuth authority over HTTPS (self-signed CA)
 * with OpenID metadata and a v2.0 token endpoint for the client-credentials grant with a client
 * secret or a client assertion (the workload identity's federated token, checked against the
 * expected one).
 */
export class FakeEntra {
  readonly ledger: TokenLedger;
  readonly identityHeader = "fake-identity-header";
  tenantId = "00000000-0000-0000-0000-0000000000aa";
  clientId = "11111111-1111-1111-1111-1111111111bb";
  clientSecret = "fake-client-secret-value";
  /** The federated token the workload identity must present (rewritten by tests to rotate it). */
  federatedToken = "";
  /** A registered certificate (PEM): a client assertion signed with its key is accepted. */
  clientCertificate = "";
  tokenLifetimeMs: number;
  /** Tokens of at least this many characters (Entra ID's grow with group claims; hosts' limits move). */
  tokenChars = 0;
  readonly requests: { path: string; grant?: string; assertion?: string }[] = [];
  #mi: Server | undefined;
  #authority: Server | undefined;

  constructor(ledger: TokenLedger, tokenLifetimeMs: number, readonly tls: { key: string; cert: string }) {
    this.ledger = ledger;
    this.tokenLifetimeMs = tokenLifetimeMs;
  }

  identityEndpoint = "";
  authorityHost = "";

  async start(): Promise<void> {
    this.#mi = createHttpServer((req, res) => void this.#managedIdentity(req, res));
    await new Promise<void>((r) => this.#mi?.listen(0, "127.0.0.1", r));
    this.identityEndpoint = `http://127.0.0.1:${(this.#mi.address() as AddressInfo).port}/msi/token`;
    this.#authority = createHttpsServer({ key: this.tls.key, cert: this.tls.cert }, (req, res) => void this.#oauth(req, res));
    await new Promise<void>((r) => this.#authority?.listen(0, "127.0.0.1", r));
    this.authorityHost = `https://localhost:${(this.#authority.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const s of [this.#mi, this.#authority]) {
      s?.closeAllConnections?.();
      await new Promise<void>((r) => (s ? s.close(() => r()) : r()));
    }
  }

  #issue(): { access_token: string; expires_in: number; expires_on: number } {
    const padded = this.tokenChars > 0 ? `eyJ0eXAiOiJKV1QifQ.entra.${randomBytes(Math.ceil((this.tokenChars * 3) / 4)).toString("base64url")}` : undefined;
    const { token, expiresAt } = this.ledger.issue({ lifetimeMs: this.tokenLifetimeMs, prefix: "eyJ0eXAiOiJKV1QifQ.entra.", token: padded });
    return { access_token: token, expires_in: Math.round(this.tokenLifetimeMs / 1000), expires_on: Math.floor(expiresAt / 1000) };
  }

  async #managedIdentity(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    this.requests.push({ path: url.pathname, grant: "managed-identity" });
    if (req.headers["x-identity-header"] !== this.identityHeader) return sendJson(res, 401, { error: "unauthorized", error_description: "bad X-IDENTITY-HEADER" });
    if (url.searchParams.get("resource") !== AZURE_DEVOPS_SCOPE.replace("/.default", "")) return sendJson(res, 400, { error: "invalid_resource" });
    const t = this.#issue();
    sendJson(res, 200, { access_token: t.access_token, expires_on: String(t.expires_on), resource: url.searchParams.get("resource"), token_type: "Bearer" });
  }

  async #oauth(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.authorityHost);
    const tenant = this.tenantId;
    const base = `${this.authorityHost}/${tenant}`;
    if (url.pathname.endsWith("/.well-known/openid-configuration")) {
      this.requests.push({ path: url.pathname });
      return sendJson(res, 200, {
        token_endpoint: `${base}/oauth2/v2.0/token`,
        authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
        end_session_endpoint: `${base}/oauth2/v2.0/logout`,
        issuer: `${base}/v2.0`,
        jwks_uri: `${base}/discovery/v2.0/keys`,
        response_types_supported: ["code", "id_token", "code id_token", "id_token token"],
        token_endpoint_auth_methods_supported: ["client_secret_post", "private_key_jwt", "client_secret_basic"],
      });
    }
    if (req.method === "POST" && url.pathname === `/${tenant}/oauth2/v2.0/token`) {
      const form = new URLSearchParams(await readText(req));
      const assertion = form.get("client_assertion") ?? undefined;
      this.requests.push({ path: url.pathname, grant: form.get("grant_type") ?? "", assertion });
      if (form.get("client_id") !== this.clientId) return sendJson(res, 400, { error: "unauthorized_client", error_description: "AADSTS700016: Application not found" });
      if (form.get("scope")?.split(" ").includes(AZURE_DEVOPS_SCOPE) !== true) return sendJson(res, 400, { error: "invalid_scope" });
      if (assertion !== undefined) {
        const signedByCertificate = this.clientCertificate !== "" && verifiesWithCertificate(assertion, this.clientCertificate, `${base}/oauth2/v2.0/token`, this.clientId);
        if (assertion !== this.federatedToken && !signedByCertificate) {
          return sendJson(res, 401, { error: "invalid_client", error_description: "AADSTS700024: Client assertion is not within its valid time range" });
        }
      } else if (form.get("client_secret") !== this.clientSecret) {
        return sendJson(res, 401, { error: "invalid_client", error_description: "AADSTS7000215: Invalid client secret provided" });
      }
      const t = this.#issue();
      return sendJson(res, 200, { token_type: "Bearer", expires_in: t.expires_in, ext_expires_in: t.expires_in, access_token: t.access_token });
    }
    sendJson(res, 404, { error: "not_found" });
  }
}

/**
 * What Entra ID checks of a certificate's client assertion: an RS256 or PS256 JWT signed with
 * the registered certificate's key, for this client (iss, sub) and this token endpoint (aud),
 * not expired.
 */
function verifiesWithCertificate(assertion: string, certificatePem: string, audience: string, clientId: string): boolean {
  const [h, p, sig] = assertion.split(".");
  if (!h || !p || !sig) return false;
  try {
    const header = JSON.parse(Buffer.from(h, "base64url").toString()) as { alg?: string };
    const claims = JSON.parse(Buffer.from(p, "base64url").toString()) as { aud?: string; iss?: string; sub?: string; exp?: number };
    const key = new X509Certificate(certificatePem).publicKey;
    const data = Buffer.from(`${h}.${p}`);
    const signature = Buffer.from(sig, "base64url");
    const ok =
      header.alg === "RS256"
        ? verify("RSA-SHA256", data, key, signature)
        : header.alg === "PS256"
          ? verify("RSA-SHA256", data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature)
          : false;
    return ok && claims.aud === audience && claims.iss === clientId && claims.sub === clientId && (claims.exp ?? 0) * 1000 > Date.now();
  } catch {
    return false;
  }
}
