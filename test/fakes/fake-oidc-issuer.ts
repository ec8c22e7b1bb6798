import { randomBytes } from "node:crypto";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from "jose";
import { closeServer, listenOnLoopback } from "./http-helpers.ts";

interface SigningKey {
  kid: string;
  alg: "RS256" | "ES256";
  privateKey: CryptoKey;
  publicJwk: JWK;
}

/**
 * A local OIDC issuer, as Kubernetes' service-account issuer, GitHub Actions or GitLab CI are
 * to a broker: a discovery document, a JWKS over HTTP, and identity tokens signed with its
 * current key. Keys rotate as real issuers rotate them (a new `kid`; the old one dropped).
 */
export class FakeOidcIssuer {
  #server: Server | undefined;
  url = "";
  #keys: SigningKey[] = [];
  /** How many times the JWKS was fetched. */
  jwksFetches = 0;
  /** How many times the discovery document was fetched. */
  discoveryFetches = 0;
  /** While true, discovery and the JWKS answer 503, as an issuer that is down. */
  down = false;
  /** When set, discovery and the JWKS answer 401 to a request without `Authorization: Bearer <it>`, as a Kubernetes API server does. */
  requiredBearer: string | undefined;
  /** When set, the discovery document names this jwks_uri instead of its own. */
  jwksUri: string | undefined;
  /** Every request's path and Authorization header, in order. */
  readonly requests: { path: string; authorization: string | undefined }[] = [];
  readonly #issuer: string | undefined;

  /** `issuer`: the name its tokens and discovery carry, when it is not where it is reached (a Kubernetes API server's). */
  constructor(options: { issuer?: string } = {}) {
    this.#issuer = options.issuer;
  }

  get issuer(): string {
    return this.#issuer ?? this.url;
  }

  /** Listens on 127.0.0.1 over HTTP, or over HTTPS with `tls` (a certificate from makeTestCa). */
  async start(options: { tls?: { key: string; cert: string } } = {}): Promise<void> {
    await this.rotate("RS256");
    const handler = (req: IncomingMessage, res: ServerResponse) => this.#serve(req, res);
    if (options.tls) {
      const server = createHttpsServer(options.tls, handler);
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      this.#server = server;
      this.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
      return;
    }
    const { server, url } = await listenOnLoopback(handler);
    this.#server = server;
    this.url = url;
  }

  #serve(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? "/").split("?")[0] as string;
    this.requests.push({ path, authorization: req.headers.authorization });
    if (path === "/.well-known/openid-configuration") this.discoveryFetches++;
    if (path === "/openid/v1/jwks") this.jwksFetches++;
    if (this.down) return void res.writeHead(503).end();
    if (this.requiredBearer !== undefined && req.headers.authorization !== `Bearer ${this.requiredBearer}`) return void res.writeHead(401).end();
    if (path === "/.well-known/openid-configuration") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ issuer: this.issuer, jwks_uri: this.jwksUri ?? `${this.url}/openid/v1/jwks`, id_token_signing_alg_values_supported: ["RS256", "ES256"] }));
      return;
    }
    if (path === "/openid/v1/jwks") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: this.#keys.map((k) => k.publicJwk) }));
      return;
    }
    res.writeHead(404).end();
  }

  async stop(): Promise<void> {
    await closeServer(this.#server);
  }

  /** A new signing key (kid) replaces the old ones. */
  async rotate(alg: "RS256" | "ES256" = "RS256"): Promise<void> {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const kid = randomBytes(8).toString("hex");
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
    this.#keys = [{ kid, alg, privateKey, publicJwk }];
  }

  /** The current signing key (for tokens a library would not write: a claim twice, no exp). */
  signingKey(): { alg: string; privateKey: CryptoKey } {
    const key = this.#keys[0] as SigningKey;
    return { alg: key.alg, privateKey: key.privateKey };
  }

  /** The current public key as a JWK (for attacks that misuse it). */
  get publicJwk(): JWK {
    return (this.#keys[0] as SigningKey).publicJwk;
  }

  /**
   * An identity token as the issuer signs it: iss, aud, iat, exp (10 minutes), plus claims.
   * `issuedAt` (seconds since the epoch) dates it by a test's clock; exp is then 10 minutes
   * after it unless `expiresIn` gives an absolute time.
   */
  async token(claims: JWTPayload & { sub: string }, options: { audience?: string | string[]; expiresIn?: string | number; header?: Record<string, unknown>; issuedAt?: number } = {}): Promise<string> {
    const key = this.#keys[0] as SigningKey;
    const at = options.issuedAt;
    return new SignJWT(claims)
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT", ...options.header })
      .setIssuer(this.issuer)
      .setAudience(options.audience ?? "git-token-keeper")
      .setIssuedAt(at)
      .setExpirationTime(at === undefined ? (options.expiresIn ?? "10m") : typeof options.expiresIn === "number" ? options.expiresIn : at + 600)
      .sign(key.privateKey);
  }
}
