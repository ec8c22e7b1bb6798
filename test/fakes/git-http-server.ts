import { spawn } from "node:child_process";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { LfsServer } from "./lfs-server.ts";

/**
 * A real smart-HTTP git server: `git http-backend` (CGI) behind a small HTTP server that
 * accepts only what `authorize` accepts, the way GitHub accepts only live installation tokens.
 * Repositories live under `root` as `<owner>/<repo>.git`.
 */
export interface SeenRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  status: number;
}

export class GitHttpServer {
  readonly root: string;
  readonly seen: SeenRequest[] = [];
  /** Repositories (`owner/repo`) for which every credential is refused, as for an App without access. */
  readonly refuse = new Set<string>();
  /** The LFS API of every repository, behind the same credential check as git. */
  readonly lfs = new LfsServer();
  readonly #authorize: (password: string, owner: string, repo: string) => boolean;
  #faults: { status: number; count: number; match: RegExp | undefined; delayMs: number; afterApplied: boolean }[] = [];
  #server: Server | undefined;
  #port = 0;

  constructor(root: string, authorize: (password: string, owner: string, repo: string) => boolean) {
    this.root = root;
    this.#authorize = authorize;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  async start(): Promise<void> {
    this.#server = createServer((req, res) => this.#handle(req, res));
    await new Promise<void>((resolve) => this.#server?.listen(0, "127.0.0.1", resolve));
    this.#port = (this.#server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }

  /**
   * The next `count` requests (whose path matches, if given) get this status instead, after
   * `delayMs` (a gateway that hangs, then gives up).
   */
  failNext(status: number, count = 1, match?: RegExp, delayMs = 0): void {
    this.#faults.push({ status, count, match, delayMs, afterApplied: false });
  }

  /**
   * The next `count` requests (whose path matches) are served, and applied (a push updates
   * its refs), but answered with this status, as a proxy that timed out on the way back.
   */
  failAfterApplied(status: number, count: number, match: RegExp): void {
    this.#faults.push({ status, count, match, delayMs: 0, afterApplied: true });
  }

  clearFaults(): void {
    this.#faults = [];
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const [path = "/", query = ""] = (req.url ?? "/").split("?");
    const record = (status: number) =>
      this.seen.push({ method: req.method ?? "", path, authorization: req.headers.authorization, status });
    const fault = this.#faults.find((f) => !f.match || f.match.test(path));
    let answerInstead: number | undefined;
    if (fault?.afterApplied) {
      if (--fault.count <= 0) this.#faults.splice(this.#faults.indexOf(fault), 1);
      answerInstead = fault.status;
    } else if (fault) {
      if (--fault.count <= 0) this.#faults.splice(this.#faults.indexOf(fault), 1);
      record(fault.status);
      req.resume();
      setTimeout(() => {
        res.writeHead(fault.status, { "content-type": "text/plain" });
        res.end(`injected ${fault.status}\n`);
      }, fault.delayMs);
      return;
    }
    // LFS transfers go to one-time signed links, which need no credential.
    if (this.lfs.isTransfer(path)) {
      void this.lfs.handle(req, res, path, this.url, "").then(record);
      return;
    }
    const [, owner = "", repo = ""] = /^\/([^/]+)\/([^/]+)/.exec(path) ?? [];
    const password = basicPassword(req.headers.authorization);
    const lfsApi = LfsServer.isApi(path);
    if (password === undefined || this.refuse.has(`${owner}/${repo.replace(/\.git$/, "")}`) || !this.#authorize(password, owner, repo)) {
      record(401);
      req.resume();
      if (lfsApi) {
        // The LFS API's own way to ask for a credential.
        res.writeHead(401, { "content-type": "application/vnd.git-lfs+json", "lfs-authenticate": 'Basic realm="git-token-keeper test"' });
        res.end(JSON.stringify({ message: "Authentication required" }));
        return;
      }
      res.writeHead(401, { "content-type": "text/plain", "www-authenticate": 'Basic realm="git-token-keeper test"' });
      res.end(password === undefined ? "" : "Invalid username or token. Password authentication is not supported for Git operations.\n");
      return;
    }
    if (lfsApi) {
      void this.lfs.handle(req, res, path, this.url, "build").then(record);
      return;
    }
    this.#cgi(req, res, path, query, owner, record, answerInstead);
  }

  #cgi(req: IncomingMessage, res: ServerResponse, path: string, query: string, owner: string, record: (s: number) => void, answerInstead?: number): void {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      GIT_PROJECT_ROOT: this.root,
      GIT_HTTP_EXPORT_ALL: "1",
      PATH_INFO: decodeURIComponent(path),
      QUERY_STRING: query,
      REQUEST_METHOD: req.method,
      CONTENT_TYPE: req.headers["content-type"] ?? "",
      REMOTE_USER: owner,
      REMOTE_ADDR: "127.0.0.1",
      GIT_CONFIG_NOSYSTEM: "1",
      HOME: this.root,
    };
    if (req.headers["content-encoding"]) env.HTTP_CONTENT_ENCODING = req.headers["content-encoding"];
    if (req.headers["git-protocol"]) env.GIT_PROTOCOL = req.headers["git-protocol"] as string;
    if (req.headers["content-length"]) env.CONTENT_LENGTH = req.headers["content-length"];
    const child = spawn("git", ["http-backend"], { env, stdio: ["pipe", "pipe", "inherit"] });
    req.pipe(child.stdin);
    child.stdin.on("error", () => undefined);
    let head = Buffer.alloc(0);
    let headersDone = false;
    if (answerInstead !== undefined) {
      child.stdout.resume();
      child.on("close", () => {
        record(answerInstead);
        res.writeHead(answerInstead, { "content-type": "text/plain" });
        res.end(`injected ${answerInstead}\n`);
      });
      return;
    }
    child.stdout.on("data", (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      const endLf = head.indexOf("\n\n");
      const cut = end >= 0 ? end : endLf;
      if (cut < 0) return;
      const sep = end >= 0 ? 4 : 2;
      const headers: Record<string, string> = {};
      let status = 200;
      for (const line of head.subarray(0, cut).toString("latin1").split(/\r?\n/)) {
        const i = line.indexOf(":");
        if (i < 0) continue;
        const name = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        if (name.toLowerCase() === "status") status = Number.parseInt(value, 10);
        else headers[name] = value;
      }
      headersDone = true;
      record(status);
      res.writeHead(status, headers);
      res.write(head.subarray(cut + sep));
    });
    child.on("close", () => {
      if (!headersDone) {
        record(500);
        res.writeHead(500);
      }
      res.end();
    });
  }
}

// The token from Basic (the password) or Bearer (git ≥ 2.46 with a helper's authtype=Bearer).
function basicPassword(header: string | undefined): string | undefined {
  const bearer = /^bearer\s+(\S+)$/i.exec(header ?? "");
  if (bearer?.[1]) return bearer[1];
  const m = /^basic\s+(.+)$/i.exec(header ?? "");
  if (!m?.[1]) return undefined;
  const decoded = Buffer.from(m[1], "base64").toString("utf8");
  const i = decoded.indexOf(":");
  return i < 0 ? undefined : decoded.slice(i + 1);
}
