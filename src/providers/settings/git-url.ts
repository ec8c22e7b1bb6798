/** `scheme://host[:port]`, lower-case, default port dropped: the form the shim and helper compare. */
export type GitOrigin = string;

// `localhost` and every name under it are loopback (RFC 6761); gh calls a local GitHub
// `github.localhost`.
const LOOPBACK = /^((?:[a-z0-9-]+\.)*localhost|127(?:\.\d{1,3}){3}|\[::1\])$/;

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK.test(hostname.toLowerCase());
}

/**
 * Normalises a configured git or API URL. Returns a message instead of throwing so the
 * config loader can name the key.
 */
export function parseOrigin(
  raw: string,
  options: { allowPath: boolean },
): { origin: GitOrigin; url: URL } | { problem: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { problem: `'${raw}' is not a URL; write it as https://host[:port]` };
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return { problem: `'${raw}' must start with https:// (the keeper serves tokens over HTTP(S) only)` };
  }
  if (url.protocol === "http:" && !isLoopbackHost(url.hostname)) {
    return { problem: `'${raw}' uses http://, which sends tokens in clear; use https:// (http:// is accepted only for loopback hosts)` };
  }
  if (url.username || url.password) {
    return { problem: `'${raw}' holds credentials; remove the user:password@ part` };
  }
  if (url.search || url.hash) return { problem: `'${raw}' must not have a query or fragment` };
  if (!options.allowPath && url.pathname !== "/" && url.pathname !== "") {
    return { problem: `'${raw}' must be scheme://host[:port] without a path` };
  }
  // URL drops the scheme's default port and lower-cases the host.
  return { origin: `${url.protocol}//${url.host}`, url };
}
