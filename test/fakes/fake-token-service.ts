import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { closeServer, listenOnLoopback } from "./http-helpers.ts";
import type { TokenLedger } from "./token-ledger.ts";

/**
 * An in-house token service (a Vault-like or STS-like endpoint): POST /v1/token with a bearer
 * credential returns {data: {token, ttl}}; GET /plain returns {token, expires_in} without
 * asking for credentials (for the exec provider's script).
 */
export class FakeTokenService {
  readonly ledger: TokenLedger;
  bearer = "service-credential-1";
  tokenLifetimeMs: number;
  calls = 0;
  #server: Server | undefined;
  url = "";

  constructor(ledger: TokenLedger, tokenLifetimeMs: number) {
    this.ledger = ledger;
    this.tokenLifetimeMs = tokenLifetimeMs;
  }

  async start(): Promise<void> {
    ({ server: this.#server, url: this.url } = await listenOnLoopback((req, res) => this.#handle(req, res)));
  }

  async stop(): Promise<void> {
    await closeServer(this.#server);
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    const send = (status: number, data: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(data));
    };
    this.calls++;
    const ttl = Math.round(this.tokenLifetimeMs / 1000);
    if (req.method === "POST" && req.url === "/v1/token") {
      if (req.headers.authorization !== `Bearer ${this.bearer}`) return send(403, { errors: ["permission denied"] });
      const { token } = this.ledger.issue({ lifetimeMs: this.tokenLifetimeMs, prefix: "svc_" });
      return send(200, { data: { token, ttl } });
    }
    if (req.method === "GET" && req.url === "/plain") {
      const { token } = this.ledger.issue({ lifetimeMs: this.tokenLifetimeMs, prefix: "exec_" });
      return send(200, { token, expires_in: ttl, username: "build-bot" });
    }
    send(404, { errors: ["not found"] });
  }
}
