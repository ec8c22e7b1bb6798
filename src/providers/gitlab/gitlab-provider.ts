import { readFileSync } from "node:fs";
import type { GitLabProviderConfig } from "./gitlab-config.ts";
import { classifyFailure } from "../../errors/classify-failure.ts";
import { ProviderError } from "../../errors/keeper-error.ts";
import { writeFileAtomic } from "../../store/atomic-write.ts";
import { sharedTokenProvider, type MintedToken, type TokenProvider } from "../token-provider.ts";
import { apiRequest, flatHeaders, type ApiAnswer } from "../api-request.ts";

function readOne(file: string, what: string): string {
  try {
    const value = readFileSync(file, "utf8").trim();
    if (value) return value;
  } catch {
    // Reported below.
  }
  throw new ProviderError(`${what} file '${file}' is missing or empty`, { transient: false, hint: `put the ${what} in it (one line, mode 0600)` });
}

async function postJson(url: string, init: { headers: Record<string, string>; body: URLSearchParams | undefined }, what: string, now: () => number): Promise<Record<string, unknown>> {
  let response: ApiAnswer;
  try {
    response = await apiRequest(url, { method: "POST", headers: init.headers, body: init.body?.toString(), timeoutMs: 30_000 });
  } catch (error) {
    throw classifyFailure(error, what, now());
  }
  const ok = response.status >= 200 && response.status < 300;
  const text = response.body.toString("utf8");
  let data: Record<string, unknown> = {};
  try {
    data = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    if (ok) throw new ProviderError(`${what}: the answer is not JSON`, { transient: true });
  }
  if (!ok) {
    const message = String(data.error_description ?? data.message ?? data.error ?? "");
    throw classifyFailure(
      Object.assign(new Error(message), { status: response.status, response: { headers: flatHeaders(response.headers), data: { message } } }),
      what,
      now(),
      response.status === 400 || response.status === 401 ? "the stored token was already used or revoked; put a new one in the file" : undefined,
    );
  }
  return data;
}

/**
 * GitLab: an OAuth2 refresh-token grant, or an access token that rotates itself. GitLab makes
 * refresh tokens single-use (a refresh invalidates the old access and refresh tokens) and
 * rotation revokes the old token: the new one is written to its file atomically (0600) before
 * the new access token is used, so a crash never loses the chain.
 */
export function createGitLabProvider(config: GitLabProviderConfig, now: () => number = Date.now): TokenProvider {
  const api = config.apiBase;

  async function refreshGrant(): Promise<MintedToken> {
    const refreshToken = readOne(config.refreshTokenFile ?? "", "refresh token");
    const body = new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken, client_id: config.clientId ?? "" });
    if (config.clientSecretFile) body.set("client_secret", readOne(config.clientSecretFile, "client secret"));
    const data = await postJson(`${api}/oauth/token`, { headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" }, body }, "refreshing the GitLab OAuth token", now);
    const access = data.access_token;
    const next = data.refresh_token;
    if (typeof access !== "string" || typeof next !== "string") throw new ProviderError("GitLab's token answer has no access_token or refresh_token", { transient: true });
    writeFileAtomic(config.refreshTokenFile ?? "", `${next}\n`);
    const createdAt = typeof data.created_at === "number" ? data.created_at * 1000 : now();
    const expiresIn = typeof data.expires_in === "number" ? data.expires_in : 7200;
    return { token: access, expiresAt: new Date(createdAt + expiresIn * 1000) };
  }

  async function selfRotate(): Promise<MintedToken> {
    const current = readOne(config.tokenFile ?? "", "access token");
    const path =
      config.tokenKind === "personal"
        ? "/api/v4/personal_access_tokens/self/rotate"
        : `/api/v4/${config.tokenKind === "project" ? "projects" : "groups"}/${encodeURIComponent(String(config.resourceId))}/access_tokens/self/rotate`;
    // GitLab takes whole days; the token then expires at the end of that day (UTC).
    const expires = new Date(now() + Math.max(config.rotateTokenLifetime, 86_400_000)).toISOString().slice(0, 10);
    const data = await postJson(`${api}${path}`, { headers: { "private-token": current, "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ expires_at: expires }) }, "rotating the GitLab access token", now);
    const token = data.token;
    if (typeof token !== "string") throw new ProviderError("GitLab's rotate answer has no token", { transient: true });
    writeFileAtomic(config.tokenFile ?? "", `${token}\n`);
    // GitLab answers a date (the token stops working at its start, UTC); take a full time as is.
    const at = typeof data.expires_at === "string" ? data.expires_at : undefined;
    const expiresAt = at ? new Date(/^\d{4}-\d{2}-\d{2}$/.test(at) ? `${at}T00:00:00Z` : at) : undefined;
    return { token, expiresAt };
  }

  return sharedTokenProvider(config, {
    mint() {
      return config.grant === "refresh-token" ? refreshGrant() : selfRotate();
    },
  });
}
