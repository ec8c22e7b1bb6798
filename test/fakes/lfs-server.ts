import { createHash, randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { readBody } from "./http-helpers.ts";

const JSON_TYPE = "application/vnd.git-lfs+json";

interface LfsObject {
  oid: string;
  size: number;
}

/**
 * The Git LFS API of a repository, as GitHub serves it (the documented batch API, basic
 * transfers, file locking): `<repo>.git/info/lfs/objects/batch`, `…/locks`, `…/locks/verify`.
 * The caller has already checked the request's credential, as for git; transfers go to
 * one-time signed hrefs that need none, as GitHub's storage URLs do. Objects are checked
 * against their sha256 on upload.
 */
export class LfsServer {
  /** oid → content, per repository. */
  readonly objects = new Map<string, Map<string, Buffer>>();
  readonly locks = new Map<string, { id: string; path: string; owner: string }[]>();
  readonly #signed = new Map<string, { repo: string; oid: string; op: "upload" | "download" }>();

  /** Whether the path is an LFS API path (to authorise like git), or a signed transfer href. */
  static isApi(path: string): boolean {
    return /\.git\/info\/lfs\//.test(path);
  }

  isTransfer(path: string): boolean {
    return path.startsWith("/lfs-storage/");
  }

  async handle(req: IncomingMessage, res: ServerResponse, path: string, baseUrl: string, user: string): Promise<number> {
    const body = await readBody(req);
    if (this.isTransfer(path)) return this.#transfer(req, res, path, body);
    const m = /^\/([^/]+\/[^/]+?)(?:\.git)?\/info\/lfs\/(.*)$/.exec(path);
    if (!m) return send(res, 404, { message: "not found" });
    const [, repo = "", rest = ""] = m;
    if (rest === "objects/batch" && req.method === "POST") return this.#batch(res, repo, JSON.parse(body.toString("utf8") || "{}"), baseUrl);
    const locks = this.locks.get(repo) ?? [];
    this.locks.set(repo, locks);
    if (rest === "locks/verify" && req.method === "POST") {
      return send(res, 200, { ours: locks.filter((l) => l.owner === user).map(lockJson), theirs: locks.filter((l) => l.owner !== user).map(lockJson) });
    }
    if (rest === "locks" && req.method === "POST") {
      const { path: file } = JSON.parse(body.toString("utf8")) as { path: string };
      if (locks.some((l) => l.path === file)) return send(res, 409, { message: "already locked" });
      const lock = { id: randomBytes(4).toString("hex"), path: file, owner: user };
      locks.push(lock);
      return send(res, 201, { lock: lockJson(lock) });
    }
    if (rest === "locks" && req.method === "GET") return send(res, 200, { locks: locks.map(lockJson) });
    const unlock = /^locks\/([^/]+)\/unlock$/.exec(rest);
    if (unlock && req.method === "POST") {
      const i = locks.findIndex((l) => l.id === unlock[1]);
      if (i < 0) return send(res, 404, { message: "no such lock" });
      const [lock] = locks.splice(i, 1);
      return send(res, 200, { lock: lockJson(lock as { id: string; path: string; owner: string }) });
    }
    return send(res, 404, { message: "not found" });
  }

  #batch(res: ServerResponse, repo: string, request: { operation?: string; objects?: LfsObject[] }, baseUrl: string): number {
    const store = this.objects.get(repo) ?? new Map<string, Buffer>();
    this.objects.set(repo, store);
    const op = request.operation === "upload" ? "upload" : "download";
    const objects = (request.objects ?? []).map(({ oid, size }) => {
      if (op === "download" && !store.has(oid)) return { oid, size, error: { code: 404, message: "object does not exist" } };
      if (op === "upload" && store.has(oid)) return { oid, size };
      const key = randomBytes(16).toString("hex");
      this.#signed.set(key, { repo, oid, op });
      return { oid, size, authenticated: true, actions: { [op]: { href: `${baseUrl}/lfs-storage/${key}`, expires_in: 600 } } };
    });
    return send(res, 200, { transfer: "basic", objects, hash_algo: "sha256" });
  }

  #transfer(req: IncomingMessage, res: ServerResponse, path: string, body: Buffer): number {
    const signed = this.#signed.get(path.slice("/lfs-storage/".length));
    if (!signed) return send(res, 403, { message: "unknown or used link" });
    const store = this.objects.get(signed.repo) as Map<string, Buffer>;
    if (signed.op === "upload" && req.method === "PUT") {
      if (createHash("sha256").update(body).digest("hex") !== signed.oid) return send(res, 422, { message: "content does not match its oid" });
      store.set(signed.oid, body);
      this.#signed.delete(path.slice("/lfs-storage/".length));
      res.writeHead(200);
      res.end();
      return 200;
    }
    if (signed.op === "download" && req.method === "GET") {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.end(store.get(signed.oid));
      return 200;
    }
    return send(res, 405, { message: "wrong method" });
  }
}

function lockJson(l: { id: string; path: string; owner: string }) {
  return { id: l.id, path: l.path, locked_at: new Date(0).toISOString(), owner: { name: l.owner } };
}

function send(res: ServerResponse, status: number, body: unknown): number {
  res.writeHead(status, { "content-type": JSON_TYPE });
  res.end(JSON.stringify(body));
  return status;
}
