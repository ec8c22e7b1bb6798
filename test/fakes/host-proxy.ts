import { request, type Server } from "node:http";
import { closeServer, listenOnLoopback } from "./http-helpers.ts";

/**
 * An HTTP forward proxy for host names that resolve nowhere here (gh's `github.localhost` and
 * `api.github.localhost`): each request goes to the local server that `routes` names for its
 * host, with its Host header kept, as a name server and a real host would have it.
 */
export class HostProxy {
  readonly seen: string[] = [];
  #server: Server | undefined;
  url = "";

  constructor(readonly routes: Record<string, string>) {}

  async start(): Promise<void> {
    const { server, url } = await listenOnLoopback((req, res) => {
      let target: URL;
      try {
        target = new URL(req.url ?? "");
      } catch {
        res.writeHead(400).end("absolute URLs only");
        return;
      }
      this.seen.push(target.host);
      const to = this.routes[target.host];
      if (!to) {
        res.writeHead(502).end(`no route for ${target.host}`);
        return;
      }
      const upstream = new URL(to);
      const forward = request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: `${target.pathname}${target.search}`, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forward.on("error", () => res.writeHead(502).end());
      req.pipe(forward);
    });
    this.#server = server;
    this.url = url;
  }

  async stop(): Promise<void> {
    await closeServer(this.#server);
  }
}
