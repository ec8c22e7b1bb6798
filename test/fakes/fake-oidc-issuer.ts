import { randomBytes } from "node:crypto";
import type { Server } from "node:http";
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

  get issuer(): string {
    return this.url;
  }

  async start(): Promise<void> {
    await this.rotate("RS256");
    const { server, url } = await listenOnLoopback((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      if (path === "/.well-known/openid-configuration") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ issuer: this.issuer, jwks_uri: `${this.url}/openid/v1/jwks`, id_token_signing_alg_values_supported: ["RS256", "ES256"] }));
        return;
      }
      if (path === "/openid/v1/jwks") {
        this.jwksFetches++;
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ keys: this.#keys.map((k) => k.publicJwk) }));
        return;
      }
      res.writeHead(404).end();
    });
    this.#server = server;
    this.url = url;
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

  /** An identity token as the issuer signs it: iss, aud, iat, exp (10 minutes), plus claims. */
  async token(claims: JWTPayload & { sub: string }, options: { audience?: string | string[]; expiresIn?: string | number; header?: Record<string, unknown> } = {}): Promise<string> {
    const key = this.#keys[0] as SigningKey;
    return new SignJWT(claims)
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT", ...options.header })
      .setIssuer(this.issuer)
      .setAudience(options.audience ?? "git-token-keeper")
      .setIssuedAt()
      .setExpirationTime(options.expiresIn ?? "10m")
      .sign(key.privateKey);
  }
}
