import { readSecretFile } from "../settings/read-secret.ts";
import { classifyFailure, isTransientStatus, parseRetryAfter } from "../../errors/classify-failure.ts";
import { ProviderError } from "../../errors/keeper-error.ts";
import { apiRequest, serverDate } from "../api-request.ts";
import type { MintedToken, TokenProvider } from "../token-provider.ts";
import type { BrokerProviderConfig } from "./broker-config.ts";

/**
 * Tokens from a git-token-keeper broker: one per owner, on first use (like a GitHub App serving
 * any owner). The broker's `expires_at` drives refresh; a token a host refused is named by its
 * fingerprint so that the broker re-mints it; while the broker is unreachable the current
 * token keeps serving (the daemon's slots retry with backoff).
 */
export function createBrokerProvider(config: BrokerProviderConfig, deps: { now?: () => number; env?: NodeJS.ProcessEnv } = {}): TokenProvider {
  const now = deps.now ?? Date.now;
  const env = deps.env ?? process.env;
  const endpoint = `${config.url.replace(/\/+$/, "")}/v1/token`;

  async function identityToken(): Promise<string> {
    if (config.identityTokenFile) {
      try {
        return readSecretFile(config.identityTokenFile, "utf8").trim();
      } catch (error) {
        throw new ProviderError(`cannot read the identity token file ${config.identityTokenFile}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, {
          transient: true,
          hint: "mount a projected service-account token there (audience: git-token-keeper), or point identityTokenFile at the CI system's OIDC token",
        });
      }
    }
    // GitHub Actions: the job's OIDC token, for the broker's audience.
    const requestUrl = env.ACTIONS_ID_TOKEN_REQUEST_URL;
    const requestToken = env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
    if (!requestUrl || !requestToken) {
      throw new ProviderError("ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN are not set", { transient: false, hint: "give the job `permissions: id-token: write`, and run the keeper in the job's environment" });
    }
    const u = new URL(requestUrl);
    u.searchParams.set("audience", config.actionsAudience as string);
    const answer = await apiRequest(u, { method: "GET", headers: { authorization: `bearer ${requestToken}`, accept: "application/json" }, timeoutMs: config.timeout });
    const value = answer.status === 200 ? (JSON.parse(answer.body.toString("utf8")) as { value?: unknown }).value : undefined;
    if (typeof value !== "string") throw new ProviderError(`the Actions OIDC endpoint answered ${answer.status}`, { transient: isTransientStatus(answer.status) });
    return value;
  }

  return {
    config,
    // A token per repository is minted when a repository is first asked for.
    initialOwners: async () => (config.perRepository ? [] : (config.owners ?? [])),
    servedOwners: () => config.owners,
    async mint(scope, context): Promise<MintedToken> {
      const [owner, repository] = scope.split("~") as [string, string | undefined];
      const identity = await identityToken();
      let answer;
      try {
        answer = await apiRequest(endpoint, {
          method: "POST",
          headers: { authorization: `Bearer ${identity}`, "content-type": "application/json", accept: "application/json" },
          body: JSON.stringify({ gitUrl: config.gitOrigin, owner, ...(repository ? { repository } : {}), ...(context?.refused ? { refused: context.refused } : {}) }),
          timeoutMs: config.timeout,
          tls: config.caFile ? { ca: readSecretFile(config.caFile) } : undefined,
          maxBytes: 64_000,
        });
      } catch (error) {
        throw classifyFailure(error, `asking the broker ${config.url} for '${owner}'`, now(), "check that the broker is reachable and its certificate is signed by caFile");
      }
      let body: { token?: unknown; username?: unknown; expires_at?: unknown; message?: unknown } = {};
      try {
        body = JSON.parse(answer.body.toString("utf8"));
      } catch {
        // Reported below with the status.
      }
      if (answer.status !== 200) {
        const why = typeof body.message === "string" ? body.message : answer.statusText;
        const hints: Record<number, string> = {
          401: "the broker did not accept this workload's identity token: check its issuer and audience against the broker's identities",
          403: "no broker policy allows this owner for this workload: ask the broker's admin, or fix owners",
        };
        throw new ProviderError(`the broker answered ${answer.status} for '${owner}': ${why}`, {
          transient: isTransientStatus(answer.status),
          retryAfterMs: parseRetryAfter(answer.headers["retry-after"] as string | undefined, now()),
          hint: hints[answer.status],
        });
      }
      if (typeof body.token !== "string" || !body.token || typeof body.expires_at !== "string" || Number.isNaN(Date.parse(body.expires_at))) {
        throw new ProviderError("the broker answered without a token and its expiry", { transient: true });
      }
      return { token: body.token, expiresAt: new Date(body.expires_at), serverDate: serverDate(answer.headers.date), username: typeof body.username === "string" ? body.username : undefined };
    },
  };
}
