import { chmodSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { Registry } from "prom-client";

/**
 * Serves `/metrics` (Prometheus text) and `/healthz` (200 or 503 with the reason) on a loopback
 * `host:port` or `unix:/path` (0660). Nothing else, and never a token.
 */
export async function startMetricsServer(listen: string, registry: Registry, health: () => string | undefined): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/metrics") {
      registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
      return;
    }
    if (path === "/healthz") {
      const problem = health();
      res.writeHead(problem ? 503 : 200, { "content-type": "text/plain; charset=utf-8" }).end(problem ? `${problem}\n` : "ok\n");
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    if (listen.startsWith("unix:")) {
      const path = listen.slice(5);
      rmSync(path, { force: true });
      server.listen(path, () => {
        chmodSync(path, 0o660);
        resolve();
      });
    } else {
      const i = listen.lastIndexOf(":");
      server.listen(Number(listen.slice(i + 1)), listen.slice(0, i).replace(/^\[|\]$/g, ""), resolve);
    }
  });
  return server;
}
