import { readFileSync } from "node:fs";
import { join } from "node:path";

export interface RouteMatch {
  provider: string;
  /** The token file's name: the owner, `owner~repository`, or `shared`. */
  scope: string;
  origin: string;
}

/** A credential request as git gives it to the helper. */
export interface HelperRequest {
  protocol: string;
  host: string;
  path: string;
}

/**
 * The route the credential helper (shim/git-credential-token-keeper) takes, by the same rules,
 * for TypeScript's callers (`token`, `exec`): the same origin (protocol as given, host
 * lower-cased without its scheme's default port), the longest matching path prefix, an owner
 * listed over any owner; a path that climbs (`..`, `.`, or their percent-encoded forms) gets
 * nothing, and so does an owner that is not a plain name. The tests feed both the same
 * generated inputs (test/support/helper-inputs.ts).
 */
export function routeFor(routes: string, request: HelperRequest): RouteMatch | undefined {
  // A shell's `read` drops NUL bytes; git never sends one.
  const protocol = request.protocol.replace(/\0/g, "");
  if (protocol !== "http" && protocol !== "https") return undefined;
  let host = request.host.replace(/\0/g, "").toLowerCase();
  if (protocol === "https" && host.endsWith(":443")) host = host.slice(0, -4);
  if (protocol === "http" && host.endsWith(":80")) host = host.slice(0, -3);
  const origin = `${protocol}://${host}`;
  const path = `/${request.path.replace(/\0/g, "").replace(/^\//, "")}`.toLowerCase();
  if (/\/\.\.?(\/|$)|%2[ef]/.test(path)) return undefined;
  const owner = path.split("/")[1] ?? "";
  let best: { provider: string; mode: string; score: number } | undefined;
  for (const line of routes.split("\n")) {
    const [o, provider, prefix, mode, owners = ""] = line.split(" ");
    if (o !== origin || !provider || !prefix || !mode || !path.startsWith(prefix)) continue;
    const score = `,${owners},`.includes(`,${owner},`) ? prefix.length * 2 + 1 : owners === "*" ? prefix.length * 2 : -1;
    if (score > (best?.score ?? -1)) best = { provider, mode, score };
  }
  if (!best) return undefined;
  if (best.mode === "shared") return { provider: best.provider, scope: "shared", origin };
  const NAME = /^[a-z0-9_-][a-z0-9._-]*$/;
  if (!NAME.test(owner)) return undefined;
  if (best.mode !== "repository") return { provider: best.provider, scope: owner, origin };
  // One token per repository: owner~repository (the second segment, less .git).
  const segments = path.split("/");
  if (segments.length < 3) return undefined;
  const repo = (segments[2] as string).replace(/\.git$/, "");
  return NAME.test(repo) ? { provider: best.provider, scope: `${owner}~${repo}`, origin } : undefined;
}

/**
 * The route for a URL as a URL parser reads it (WHATWG, as Node.js and curl do): the authority
 * ends at the first `/`, `?`, `#` or `\\`, so `https://evil.example?@github.com/acme` is
 * evil.example's. A URL that parsers could read differently (a backslash, whitespace or a
 * control character, a query or fragment) gets no route: the token goes nowhere its reader
 * might not mean.
 */
export function findRoute(stateDir: string, rawUrl: string): RouteMatch | undefined {
  if (/[\\\s\u0000-\u001f\u007f]/.test(rawUrl)) return undefined;
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    return undefined;
  }
  if ((url.protocol !== "https:" && url.protocol !== "http:") || url.hash || url.search) return undefined;
  // The authority as written (less any user:password@) must be the one parsed: anything
  // between them is a disagreement.
  const written = /^https?:\/\/([^/?#]*)/i.exec(rawUrl)?.[1]?.replace(/^.*@/, "").toLowerCase();
  if (written === undefined || (written !== url.host && written !== `${url.hostname}:${defaultPort(url.protocol)}`)) return undefined;
  let routes: string;
  try {
    routes = readFileSync(join(stateDir, "routes"), "utf8");
  } catch {
    return undefined;
  }
  return routeFor(routes, { protocol: url.protocol.slice(0, -1), host: url.host, path: url.pathname.replace(/^\//, "") });
}

function defaultPort(protocol: string): string {
  return protocol === "https:" ? "443" : "80";
}
