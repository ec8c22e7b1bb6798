import { isLoopbackHost } from "../providers/settings/git-url.ts";

/**
 * Whether a URL is plain http:// to a host other than loopback (127.0.0.0/8, ::1, localhost):
 * keys fetched from it could be swapped by anyone on the network path. False for anything that
 * is not such a URL (the caller checks the URL itself).
 */
export function insecureKeyUrl(raw: string): boolean {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return false;
  }
  return url.protocol === "http:" && !isLoopbackHost(url.hostname);
}
