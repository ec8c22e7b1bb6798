import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, test } from "vitest";
import { apiFetch, apiRequest } from "../../../src/providers/api-request.ts";
import { classifyFailure } from "../../../src/errors/classify-failure.ts";

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; seen: { url: string; authorization: string | undefined; method: string }[] }> {
  const seen: { url: string; authorization: string | undefined; method: string }[] = [];
  const server = createServer((req, res) => {
    seen.push({ url: req.url ?? "", authorization: req.headers.authorization, method: req.method ?? "" });
    handler(req, res);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

describe("apiFetch: the fetch the API clients get", () => {
  test("answers status, lower-case headers readable in any case, and the body as text, JSON and bytes", async () => {
    const api = await serve((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        res.setHeader("X-Thing", ["a", "b"]);
        res.writeHead(201, "Created", { "content-type": "application/json" }).end(JSON.stringify({ got: body, method: req.method }));
      });
    });
    const response = await apiFetch(5_000)(`${api.url}/app/installations/1/access_tokens`, { method: "POST", headers: { accept: "application/json" }, body: '{"a":1}' });
    expect(response.status).toBe(201);
    expect(response.ok).toBe(true);
    expect(response.statusText).toBe("Created");
    expect(response.headers.get("Content-Type")).toBe("application/json");
    expect(Object.fromEntries(response.headers)).toMatchObject({ "x-thing": "a, b" });
    expect(await response.json()).toEqual({ got: '{"a":1}', method: "POST" });
    expect(new TextDecoder().decode(await response.arrayBuffer())).toBe(await response.text());
  });

  test("follows a GET's redirect on the same origin, never to another host, and never a POST's", async () => {
    const elsewhere = await serve((_req, res) => res.end("{}"));
    const api = await serve((req, res) => {
      if (req.url === "/users/old/installation") res.writeHead(301, { location: "/users/new/installation" }).end();
      else if (req.url === "/away") res.writeHead(302, { location: `${elsewhere.url}/steal` }).end();
      else if (req.url === "/post") res.writeHead(307, { location: "/users/new/installation" }).end();
      else res.end(JSON.stringify({ id: 7 }));
    });
    const fetch = apiFetch(5_000);
    const headers = { authorization: "Bearer secret" };
    const moved = await fetch(`${api.url}/users/old/installation`, { headers });
    expect(moved.status).toBe(200);
    expect(moved.url).toBe(`${api.url}/users/new/installation`);
    expect(api.seen.map((s) => s.authorization)).toEqual(["Bearer secret", "Bearer secret"]);

    const away = await fetch(`${api.url}/away`, { headers });
    expect(away.status).toBe(302);
    expect(elsewhere.seen).toEqual([]);

    const post = await fetch(`${api.url}/post`, { method: "POST", headers, body: "{}" });
    expect(post.status).toBe(307);
    expect(api.seen.filter((s) => s.method === "POST")).toHaveLength(1);
  });
});

describe("apiRequest: one whole answer", () => {
  test("an API that trickles its answer is cut off at the timeout, for the whole exchange, as a transient timeout", async () => {
    const api = await serve((_req, res) => {
      res.writeHead(200);
      const drip = setInterval(() => res.write(" "), 50);
      res.on("close", () => clearInterval(drip));
    });
    const error = await apiRequest(api.url, { method: "GET", headers: {}, timeoutMs: 400 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "ETIMEDOUT" });
    expect(classifyFailure(error, "minting", Date.now())).toMatchObject({ transient: true });
  });

  test("an answer larger than the limit is refused, not buffered", async () => {
    const api = await serve((_req, res) => res.end(Buffer.alloc(64 * 1024, 0x61)));
    await expect(apiRequest(api.url, { method: "GET", headers: {}, timeoutMs: 5_000, maxBytes: 16 * 1024 })).rejects.toThrow(/larger than/);
  });

  test("an aborted signal stops the request; a refused connection keeps Node.js's code (transient)", async () => {
    const api = await serve(() => undefined);
    const controller = new AbortController();
    const pending = apiRequest(api.url, { method: "GET", headers: {}, timeoutMs: 5_000, signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    await expect(pending).rejects.toThrow();
    const refused = await apiRequest("http://127.0.0.1:1/", { method: "GET", headers: {}, timeoutMs: 5_000 }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: "ECONNREFUSED" });
    expect(classifyFailure(refused, "minting", Date.now())).toMatchObject({ transient: true });
  });

  test("only http: and https: URLs", async () => {
    await expect(apiRequest("file:///etc/passwd", { method: "GET", headers: {}, timeoutMs: 1_000 })).rejects.toThrow(/file: URLs are not supported/);
  });
});
