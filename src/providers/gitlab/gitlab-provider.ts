import { randomBytes } from "node:crypto";
import { closeSync, openSync, unlinkSync } from "node:fs";
import { readSecretFile } from "../settings/read-secret.ts";
import { basename, dirname, join } from "node:path";
import type { GitLabProviderConfig } from "./gitlab-config.ts";
import { classifyFailure } from "../../errors/classify-failure.ts";
import { describeError, ProviderError } from "../../errors/keeper-error.ts";
import { writeFileAtomic } from "../../store/atomic-write.ts";
import { SecretLock } from "../../store/secret-lock.ts";
import { sharedTokenProvider, type MintedToken, type TokenProvider } from "../token-provider.ts";
import { apiRequest, flatHeaders, type ApiAnswer } from "../api-request.ts";

function readOne(file: string, what: string): string {
  let value = "";
  try {
    value = readSecretFile(file, "utf8").trim();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "ENOENT") throw new ProviderError(`${what} file: ${(error as Error).message}`, { transient: false, hint: `put the ${what} in a regular file (one line, mode 0600)` });
  }
  if (value) return value;
  throw new ProviderError(`${what} file '${file}' is missing or empty`, { transient: false, hint: `put the ${what} in it (one line, mode 0600)` });
}

/**
 * Each GitLab request ends within this, under the 25 s a stop or reload waits for a refresh in
 * flight (STOP_WAIT_MS): its answer, holding the only next refresh token, is always saved.
 */
export const GITLAB_TIMEOUT_MS = 20_000;

async function postJson(url: string, init: { headers: Record<string, string>; body: URLSearchParams | undefined }, what: string, now: () => number): Promise<Record<string, unknown>> {
  let response: ApiAnswer;
  try {
    response = await apiRequest(url, { method: "POST", headers: init.headers, body: init.body?.toString(), timeoutMs: GITLAB_TIMEOUT_MS });
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

/** How the provider saves the secret that GitLab replaces; tests swap these for failing ones. */
export interface SecretFiles {
  /** Throws unless a file can be created beside `path` now. */
  probe(path: string): void;
  write(path: string, data: string): void;
}

export const secretFiles: SecretFiles = {
  probe(path) {
    const probe = join(dirname(path), `.${basename(path)}.probe.${randomBytes(4).toString("hex")}.tmp`);
    closeSync(openSync(probe, "wx", 0o600));
    unlinkSync(probe);
  },
  write: (path, data) => writeFileAtomic(path, data),
};

/**
 * GitLab: an OAuth2 refresh-token grant, or an access token that rotates itself. GitLab makes
 * refresh tokens single-use (a refresh invalidates the old access and refresh tokens) and
 * rotation revokes the old token: the new one is written to its file atomically (0600) before
 * the new access token is used, so a crash never loses the chain. Before asking GitLab the
 * provider checks that it can write beside the file (a read-only folder would otherwise lose the
 * chain for good on the first refresh); a write that still fails keeps the new secret in memory,
 * says so in the error (status, log, metrics), and writes it before anything else next time.
 */
export function createGitLabProvider(config: GitLabProviderConfig, now: () => number = Date.now, files: SecretFiles = secretFiles): TokenProvider {
  const api = config.apiBase;
  /** A secret GitLab handed out that could not be saved yet. */
  let unsaved: string | undefined;

  /** The secret to present: the unsaved one once it is saved, else the file's. */
  function currentSecret(file: string, what: string): string {
    if (unsaved !== undefined) {
      save(file, unsaved, what);
      const saved = unsaved;
      unsaved = undefined;
      return saved;
    }
    return readOne(file, what);
  }

  function save(file: string, secret: string, what: string): void {
    try {
      files.write(file, `${secret}\n`);
    } catch (error) {
      unsaved = secret;
      throw new ProviderError(`GitLab issued a new ${what}, but it cannot be written to '${file}' (${describeError(error)}); it is kept in memory and written before the next refresh, but a restart would lose it`, {
        transient: true,
        hint: `make '${dirname(file)}' writable for the daemon now (systemd: the unit's StateDirectory= or ReadWritePaths=)`,
      });
    }
  }

  function checkWritable(file: string, what: string): void {
    try {
      files.probe(file);
    } catch (error) {
      throw new ProviderError(`cannot write beside the ${what} file '${file}' (${describeError(error)}): GitLab would replace the ${what} and the new one would be lost, so nothing was sent to GitLab`, {
        transient: false,
        hint: `make '${dirname(file)}' writable for the daemon (systemd: the unit's StateDirectory= gives it /var/lib/git-token-keeper, or add ReadWritePaths=)`,
      });
    }
  }

  async function refreshGrant(): Promise<MintedToken> {
    const file = config.refreshTokenFile ?? "";
    const refreshToken = currentSecret(file, "refresh token");
    checkWritable(file, "refresh token");
    const body = new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken, client_id: config.clientId ?? "" });
    if (config.clientSecretFile) body.set("client_secret", readOne(config.clientSecretFile, "client secret"));
    const data = await postJson(`${api}/oauth/token`, { headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" }, body }, "refreshing the GitLab OAuth token", now);
    const access = data.access_token;
    const next = data.refresh_token;
    if (typeof access !== "string" || typeof next !== "string") throw new ProviderError("GitLab's token answer has no access_token or refresh_token", { transient: true });
    save(file, next, "refresh token");
    // expires_in counts from the answer, here; created_at is GitLab's clock, which may differ.
    const expiresIn = typeof data.expires_in === "number" ? data.expires_in : 7200;
    return { token: access, expiresAt: new Date(now() + expiresIn * 1000) };
  }

  async function selfRotate(): Promise<MintedToken> {
    const file = config.tokenFile ?? "";
    const current = currentSecret(file, "access token");
    checkWritable(file, "access token");
    const path =
      config.tokenKind === "personal"
        ? "/api/v4/personal_access_tokens/self/rotate"
        : `/api/v4/${config.tokenKind === "project" ? "projects" : "groups"}/${encodeURIComponent(String(config.resourceId))}/access_tokens/self/rotate`;
    // GitLab takes whole days; the token then expires at the end of that day (UTC).
    const expires = new Date(now() + Math.max(config.rotateTokenLifetime, 86_400_000)).toISOString().slice(0, 10);
    const data = await postJson(`${api}${path}`, { headers: { "private-token": current, "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ expires_at: expires }) }, "rotating the GitLab access token", now);
    const token = data.token;
    if (typeof token !== "string") throw new ProviderError("GitLab's rotate answer has no token", { transient: true });
    save(file, token, "access token");
    // GitLab answers a date (the token stops working at its start, UTC); take a full time as is.
    const at = typeof data.expires_at === "string" ? data.expires_at : undefined;
    const expiresAt = at ? new Date(/^\d{4}-\d{2}-\d{2}$/.test(at) ? `${at}T00:00:00Z` : at) : undefined;
    return { token, expiresAt };
  }

  // One daemon per rotating secret: another one refreshing from the same file would present a
  // refresh token already used, and GitLab revokes the chain.
  const file = (config.grant === "refresh-token" ? config.refreshTokenFile : config.tokenFile) ?? "";
  const lock = new SecretLock(file);
  function takeLock(): void {
    let held: string | undefined;
    try {
      held = lock.acquire();
    } catch (error) {
      throw new ProviderError(`cannot lock '${lock.path}' beside the ${config.grant === "refresh-token" ? "refresh token" : "access token"} file: ${describeError(error)}`, {
        transient: false,
        hint: `make '${dirname(file)}' writable for the daemon`,
      });
    }
    if (held) {
      throw new ProviderError(`'${file}' is another daemon's to rotate: ${held}; two daemons refreshing from one file would present the same single-use token, and GitLab would revoke the chain`, {
        transient: false,
        hint: "give each daemon its own file (and its own grant), or stop the other; a daemon that is gone leaves it within 30 s",
      });
    }
  }

  return sharedTokenProvider(config, {
    rotatesSecret: true,
    mint() {
      takeLock();
      return config.grant === "refresh-token" ? refreshGrant() : selfRotate();
    },
    async dispose() {
      lock.release();
    },
  });
}
