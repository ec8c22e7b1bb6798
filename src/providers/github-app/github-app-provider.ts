import { createAppAuth } from "@octokit/auth-app";
import { request as octokitRequest } from "@octokit/request";
import type { GitHubAppProviderConfig } from "../../config/keeper-config.ts";
import { classifyFailure } from "../../errors/classify-failure.ts";
import { ProviderError } from "../../errors/keeper-error.ts";
import type { MintedToken, TokenProvider } from "../token-provider.ts";
import { VERSION } from "../../version.ts";

export interface GitHubAppDeps {
  /** Per-request timeout for the GitHub API. */
  timeoutMs?: number;
  now?: () => number;
}

// The keeper decides when to mint: nothing may be cached. (auth-app's installation cache keeps
// a token 59 minutes from when it was cached, whatever its expires_at says; the keeper does not
// use it, and this empty cache makes sure nothing else does.)
const NO_CACHE = { get: () => undefined, set: () => undefined };

/** Mints GitHub App installation tokens, one installation per owner. */
export function createGitHubAppProvider(config: GitHubAppProviderConfig, deps: GitHubAppDeps = {}): TokenProvider {
  const timeoutMs = deps.timeoutMs ?? config.timeoutMs;
  const now = deps.now ?? Date.now;
  const request = octokitRequest.defaults({
    baseUrl: config.apiUrl,
    headers: { "user-agent": `git-token-keeper/${VERSION}` },
    request: { fetch: (url: string, init: RequestInit) => fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) }) },
  });
  const auth = createAppAuth({ appId: config.appId, privateKey: config.privateKey, request, cache: NO_CACHE as never });
  const appRequest = request.defaults({ request: { hook: auth.hook } });
  const installationIds = new Map<string, number>();
  let installationOwner: string | undefined;

  async function findInstallation(owner: string): Promise<number> {
    if (config.installationId !== undefined) return config.installationId;
    const known = installationIds.get(owner);
    if (known !== undefined) return known;
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
      throw new ProviderError(`the GitHub App is not installed on '${owner}'`, {
        transient: false,
        hint: `install the App on '${owner}', or list the owners it serves under providers[].owners`,
      });
    }
    installationIds.set(owner, id);
    return id;
  }

  return {
    config,

    async initialOwners() {
      if (config.owners) return config.owners;
      if (config.installationId === undefined) return [];
      try {
        const { data } = await appRequest("GET /app/installations/{installation_id}", {
          installation_id: config.installationId,
        });
        installationOwner = (data.account as { login?: string } | null)?.login?.toLowerCase();
      } catch (error) {
        throw classifyFailure(error, `reading installation ${config.installationId}`, now(), "check installationId and the App's ID and key");
      }
      if (!installationOwner) {
        throw new ProviderError(`installation ${config.installationId} has no account`, { transient: false });
      }
      return [installationOwner];
    },

    servedOwners() {
      if (config.owners) return config.owners;
      if (config.installationId !== undefined) return installationOwner ? [installationOwner] : [];
      return undefined;
    },

    async mint(owner) {
      const installationId = await findInstallation(owner);
      try {
        // Through the hooked request rather than auth({type: "installation"}): the hook signs
        // with a fresh JWT and, on a 401 caused by clock skew, retries with the server's time.
        const { data } = await appRequest("POST /app/installations/{installation_id}/access_tokens", {
          installation_id: installationId,
          ...(config.repositories ? { repositories: config.repositories } : {}),
          ...(config.permissions ? { permissions: config.permissions as Record<string, "read" | "write"> } : {}),
        });
        if (typeof data?.token !== "string" || !data.token || Number.isNaN(Date.parse(data.expires_at))) {
          throw new ProviderError("the GitHub API answered without a token and its expiry (malformed JSON?)", { transient: true });
        }
        return { token: data.token, expiresAt: new Date(data.expires_at) } satisfies MintedToken;
      } catch (error) {
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
