import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import type { HttpProviderConfig } from "../../../src/providers/http/http-config.ts";
import { parseConfig } from "../../../src/config/load-config.ts";
import { ProviderError } from "../../../src/errors/keeper-error.ts";
import { createHttpProvider } from "../../../src/providers/http/http-provider.ts";

describe("http provider", () => {
  const timers: NodeJS.Timeout[] = [];
  let server: Server | undefined;
  afterAll(async () => {
    for (const t of timers) clearInterval(t);
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
  });

  it("a service that trickles its answer is cut off at the timeout, for the whole answer", async () => {
    // Headers at once, then a byte every 100 ms: never idle long enough for a socket timeout.
    server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write("{");
      timers.push(setInterval(() => res.write(" "), 100));
    });
    await new Promise<void>((r) => server?.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
    const config = parseConfig(`providers:\n  - name: sts\n    type: http\n    gitUrl: https://git.example\n    url: ${url}\n    timeout: 1s\n`, "c.yaml", {}).providers[0] as HttpProviderConfig;
    const minting = createHttpProvider(config).mint("shared");
    await expect(minting).rejects.toBeInstanceOf(ProviderError);
    await expect(minting).rejects.toThrow(/within 1s|timed out/);
    // Without the deadline the mint would hang for as long as the service trickles.
  }, 10_000);
});
