import { readFileSync } from "node:fs";
import { join } from "node:path";

export interface RouteMatch {
  provider: string;
  /** The token file's name: the owner, or `shared`. */
  scope: string;
  origin: string;
}

/**
 * The route the credential helper would take for a URL: the same origin (scheme, host, port),
 * the longest matching path prefix, an explicit owner over any owner. Undefined: not served.
 */
export function findRoute(stateDir: string, rawUrl: string): RouteMatch | undefined {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    return undefined;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return undefined;
  const origin = `${url.protocol}//${url.host}`;
  const path = decodeURIComponent(url.pathname).toLowerCase();
  if (/\/\.\.?(\/|$)/.test(path)) return undefined;
  const owner = path.split("/")[1] ?? "";
  let routes: string;
  try {
    routes = readFileSync(join(stateDir, "routes"), "utf8");
  } catch {
    return undefined;
  }
  let best: (RouteMatch & { score: number }) | undefined;
  for (const line of routes.split("\n")) {
    const [o, provider, prefix, mode, owners] = line.split(" ");
    if (o !== origin || !provider || !prefix || !path.startsWith(prefix)) continue;
    const list = (owners ?? "").split(",");
    const score = list.includes(owner) ? prefix.length * 2 + 1 : owners === "*" ? prefix.length * 2 : -1;
    if (score < 0 || (best && best.score >= score)) continue;
    if (mode !== "shared" && !/^[a-z0-9][a-z0-9._-]*$/.test(owner)) continue;
    best = { provider, scope: mode === "shared" ? "shared" : owner, origin, score };
  }
  return best && { provider: best.provider, scope: best.scope, origin: best.origin };
}
