import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
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
    this.#server = createServer((req, res) => this.#handle(req, res));
    await new Promise<void>((r) => this.#server?.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((r) => (this.#server ? this.#server.close(() => r()) : r()));
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
