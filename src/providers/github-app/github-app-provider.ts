import { createAppAuth } from "@octokit/auth-app";
import { request as octokitRequest } from "@octokit/request";
import { levelWithin, type GitHubAppProviderConfig } from "./github-app-config.ts";
import { classifyFailure } from "../../errors/classify-failure.ts";
import { ProviderError } from "../../errors/keeper-error.ts";
import type { Logger } from "../../log/logger.ts";
import type { MintedToken, TokenProvider } from "../token-provider.ts";
import { VERSION } from "../../version.ts";
import { apiFetch, serverDate } from "../api-request.ts";
import { OWNER } from "../settings/schema-parts.ts";

export interface GitHubAppDeps {
  /** Per-request timeout for the GitHub API. */
  timeoutMs?: number;
  now?: () => number;
  /** Where @octokit/auth-app's warnings go (else nowhere: never plain text into a JSON log). */
  log?: Logger;
}

/** A JWT's iat/exp are judged by GitHub's clock; a difference under this needs no correction. */
const SKEW_KEPT_S = 5;

// Any-owner mode looks an owner's installation up on first use; git (or anything that can write a
// request) can name any owner. Owners without an installation are remembered, and lookups of
// owners the config does not list are bounded overall, so made-up owners cannot spend the App's
// rate limit.
const NO_INSTALLATION_TTL_MS = 10 * 60_000;
const LOOKUPS_PER_MINUTE = 20;
const MAX_NOT_INSTALLED = 1_000;
/** How long a failed lookup of installationId's account is answered without asking again. */
const ACCOUNT_FAILURE_MS = 5_000;

// The keeper decides when to mint: nothing may be cached. (auth-app's installation cache keeps
// a token 59 minutes from when it was cached, whatever its expires_at says; the keeper does not
// use it, and this empty cache makes sure nothing else does.)
const NO_CACHE = { get: () => undefined, set: () => undefined };

/** Mints GitHub App installation tokens, one installation per owner. */
export function createGitHubAppProvider(config: GitHubAppProviderConfig, deps: GitHubAppDeps = {}): TokenProvider {
  const timeoutMs = deps.timeoutMs ?? config.timeout;
  const now = deps.now ?? Date.now;
  const request = octokitRequest.defaults({
    baseUrl: config.apiUrl,
    headers: { "user-agent": `git-token-keeper/${VERSION}` },
    request: { fetch: apiFetch(timeoutMs) },
  });
  // auth-app signs JWTs with this machine's clock and, when GitHub refuses one for the clock,
  // retries once with GitHub's time, then forgets it: every later mint would pay a refused JWT.
  // The difference GitHub's Date header shows is kept here, and the JWTs signed with it.
  const authLog = {
    debug: () => undefined,
    info: () => undefined,
    warn: (message: string) => deps.log?.warn("GitHub App authentication", { provider: config.name, detail: String(message).slice(0, 500) }),
    error: (message: string) => deps.log?.warn("GitHub App authentication", { provider: config.name, detail: String(message).slice(0, 500) }),
  };
  let timeDifference = 0;
  const newAuth = () => createAppAuth({ appId: config.appId, privateKey: config.privateKey, request, cache: NO_CACHE as never, log: authLog, timeDifference } as never);
  let auth = newAuth();
  const learnClock = (headers: { date?: string | undefined } | undefined) => {
    const at = Date.parse(headers?.date ?? "");
    if (Number.isNaN(at)) return;
    const diff = Math.floor((at - now()) / 1000);
    if (Math.abs(diff - timeDifference) < SKEW_KEPT_S) return;
    deps.log?.info("GitHub's clock differs from this machine's; its time signs the App's JWTs", { provider: config.name, differenceSeconds: diff });
    timeDifference = Math.abs(diff) < SKEW_KEPT_S ? 0 : diff;
    auth = newAuth();
  };
  const appRequest = request.defaults({
    request: {
      hook: async (send: typeof request, options: Parameters<typeof request>[0]) => {
        try {
          const response = await auth.hook(send, options as never);
          learnClock(response.headers as { date?: string });
          return response;
        } catch (error) {
          learnClock((error as { response?: { headers?: { date?: string } } }).response?.headers);
          throw error;
        }
      },
    },
  });
  const installationIds = new Map<string, number>();
  /** Owner → when its lookup found no installation. */
  const notInstalled = new Map<string, number>();
  let lookups: number[] = [];
  let installationOwner: string | undefined;

  const notInstalledError = (owner: string) =>
    new ProviderError(`the GitHub App is not installed on '${owner}'`, {
      transient: false,
      hint: `install the App on '${owner}', or list the owners it serves under providers[].owners`,
    });

  async function findInstallation(owner: string, listed: boolean): Promise<number> {
    if (config.installationId !== undefined) return config.installationId;
    const known = installationIds.get(owner);
    if (known !== undefined) return known;
    const missingSince = notInstalled.get(owner);
    if (missingSince !== undefined && now() - missingSince < NO_INSTALLATION_TTL_MS) throw notInstalledError(owner);
    lookups = lookups.filter((at) => now() - at < 60_000);
    // Owners listed in the config (or, for the broker, by the policy that allowed the ask) are
    // the admin's: only owners learned on first use are bounded.
    if (!config.owners && !listed && lookups.length >= LOOKUPS_PER_MINUTE) {
      throw new ProviderError(`not looking up '${owner}' now: ${LOOKUPS_PER_MINUTE} installation lookups in the last minute already`, {
        transient: true,
        retryAfterMs: 60_000 - (now() - (lookups[0] as number)),
        hint: "list the owners the App serves under providers[].owners, so that none has to be looked up",
      });
    }
    lookups.push(now());
    let id: number | undefined;
    for (const route of ["GET /orgs/{owner}/installation", "GET /users/{owner}/installation"] as const) {
      try {
        id = (await appRequest(route, { owner })).data.id;
        break;
      } catch (error) {
        if ((error as { status?: number }).status !== 404) {
          throw classifyFailure(error, `looking up the installation for '${owner}'`, now());
        }
      }
    }
    if (id === undefined) {
      // Bounded: the oldest answers go first (each is kept NO_INSTALLATION_TTL_MS at most anyway).
      for (const [known, at] of notInstalled) {
        if (notInstalled.size < MAX_NOT_INSTALLED && now() - at < NO_INSTALLATION_TTL_MS) break;
        notInstalled.delete(known);
      }
      notInstalled.set(owner, now());
      throw notInstalledError(owner);
    }
    notInstalled.delete(owner);
    installationIds.set(owner, id);
    return id;
  }

  // One lookup at a time; a failure is answered again for a while, not asked of GitHub per call.
  let accountLookup: Promise<string> | undefined;
  let accountFailure: { at: number; error: unknown; forMs: number } | undefined;
  /** The account installationId belongs to: asked of GitHub once, a fact no config label replaces. */
  function installationAccount(): Promise<string> {
    if (installationOwner !== undefined) return Promise.resolve(installationOwner);
    if (accountFailure && now() - accountFailure.at < accountFailure.forMs) return Promise.reject(accountFailure.error);
    accountLookup ??= lookUpAccount()
      .catch((error: unknown) => {
        const retryAfterMs = error instanceof ProviderError ? error.retryAfterMs : undefined;
        accountFailure = { at: now(), error, forMs: Math.min(Math.max(retryAfterMs ?? 0, ACCOUNT_FAILURE_MS), 10 * ACCOUNT_FAILURE_MS) };
        throw error;
      })
      .finally(() => {
        accountLookup = undefined;
      });
    return accountLookup;
  }

  async function lookUpAccount(): Promise<string> {
    let login: string | undefined;
    try {
      const { data } = await appRequest("GET /app/installations/{installation_id}", {
        installation_id: config.installationId as number,
      });
      login = (data.account as { login?: string } | null)?.login?.toLowerCase();
    } catch (error) {
      throw classifyFailure(error, `reading installation ${config.installationId}`, now(), "check installationId and the App's ID and key");
    }
    if (!login) {
      throw new ProviderError(`installation ${config.installationId} has no account`, { transient: false });
    }
    // It names a folder and a routes field: an answer is data, checked like an owner in the config.
    if (!OWNER.test(login)) {
      const shown = JSON.stringify(login.slice(0, 40));
      throw new ProviderError(`installation ${config.installationId}'s account login ${shown} is not a user or organisation name`, { transient: false, hint: "check apiUrl: it should be the GitHub API" });
    }
    installationOwner = login;
    return login;
  }

  return {
    config,

    async initialOwners() {
      if (config.owners) return config.owners;
      if (config.installationId === undefined) return [];
      return [await installationAccount()];
    },

    async servesOwner(owner) {
      const lower = owner.toLowerCase();
      if (config.owners && !config.owners.includes(lower)) return false;
      return config.installationId === undefined || (await installationAccount()) === lower;
    },

    servedOwners() {
      if (config.owners) return config.owners;
      if (config.installationId !== undefined) return installationOwner ? [installationOwner] : [];
      return undefined;
    },

    async mint(owner, context) {
      const installationId = await findInstallation(owner, context?.ownerListed === true);
      // An installation set in the config is a fact about one account: never minted for another
      // owner, whatever `owners` (a label) says.
      if (config.installationId !== undefined) {
        const account = await installationAccount();
        if (account !== owner.toLowerCase()) {
          throw new ProviderError(`installation ${config.installationId} belongs to '${account}', not '${owner}'`, {
            transient: false,
            hint: "list under providers[].owners only the account of installationId, or leave installationId out to look each owner's installation up",
          });
        }
      }
      const { repositories, permissions } = narrowed(config, context?.narrow);
      try {
        // Through the hooked request rather than auth({type: "installation"}): the hook signs
        // with a fresh JWT and, on a 401 caused by clock skew, retries with the server's time.
        const { data, headers } = await appRequest("POST /app/installations/{installation_id}/access_tokens", {
          installation_id: installationId,
          ...(repositories ? { repositories } : {}),
          ...(permissions ? { permissions: permissions as Record<string, "read" | "write"> } : {}),
        });
        if (typeof data?.token !== "string" || !data.token || Number.isNaN(Date.parse(data.expires_at))) {
          throw new ProviderError("the GitHub API answered without a token and its expiry (malformed JSON?)", { transient: true });
        }
        // expires_at is GitHub's clock: counted from its Date header (a skewed host clock
        // would make the token seem to live longer or shorter than GitHub lets it).
        return { token: data.token, expiresAt: new Date(data.expires_at), serverDate: serverDate(headers.date) } satisfies MintedToken;
      } catch (error) {
        // The App was uninstalled (or reinstalled under a new id): look it up again next time.
        if ((error as { status?: number }).status === 404 && config.installationId === undefined) installationIds.delete(owner);
        throw classifyFailure(
          error,
          `minting a token for '${owner}' (installation ${installationId})`,
          now(),
          "check the App's ID, its private key, and that repositories and permissions are granted to the installation",
        );
      }
    },
  };
}

/**
 * The repositories and permissions a token is asked with: the provider's settings, narrowed by
 * the broker's scope (never widened: what the settings do not grant is left out, and a scope
 * that keeps nothing is an error, not a token with the installation's whole reach).
 */
export function narrowed(
  config: Pick<GitHubAppProviderConfig, "repositories" | "permissions">,
  narrow: { repositories?: string[] | undefined; permissions?: Record<string, string> | undefined } | undefined,
): { repositories: string[] | undefined; permissions: Record<string, string> | undefined } {
  let repositories = config.repositories;
  if (narrow?.repositories) {
    const ceiling = config.repositories?.map((r) => r.toLowerCase());
    repositories = ceiling ? narrow.repositories.filter((r) => ceiling.includes(r.toLowerCase())) : narrow.repositories;
    if (repositories.length === 0) {
      throw new ProviderError(`none of the repositories asked (${narrow.repositories.join(", ")}) is among the provider's (${config.repositories?.join(", ")})`, { transient: false });
    }
  }
  let permissions = config.permissions;
  if (narrow?.permissions) {
    const ceiling = config.permissions;
    const kept = Object.entries(narrow.permissions).flatMap(([name, level]): [string, string][] => {
      if (!ceiling) return [[name, level]];
      const max = ceiling[name];
      if (max === undefined) return [];
      return [[name, levelWithin(level, max) ? level : max]];
    });
    if (kept.length === 0) throw new ProviderError(`none of the permissions asked (${Object.keys(narrow.permissions).join(", ")}) is among the provider's`, { transient: false });
    permissions = Object.fromEntries(kept);
  }
  return { repositories, permissions };
}
