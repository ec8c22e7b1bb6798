import { readSecretFile } from "../settings/read-secret.ts";
import type { HttpProviderConfig } from "./http-config.ts";
import { classifyFailure } from "../../errors/classify-failure.ts";
import { ProviderError } from "../../errors/keeper-error.ts";
import { VERSION } from "../../version.ts";
import { expiryFromFields } from "../token-expiry.ts";
import { atPath } from "../token-json.ts";
import { apiRequest, flatHeaders, serverDate, type ApiAnswer } from "../api-request.ts";
import { sharedTokenProvider, type MintedToken, type TokenProvider } from "../token-provider.ts";

function send(config: HttpProviderConfig): Promise<ApiAnswer> {
  const url = new URL(config.url);
  const headers: Record<string, string> = { accept: "application/json", "user-agent": `git-token-keeper/${VERSION}`, ...config.headers };
  // Read at every mint: the credential file may be rotated by something else.
  if (config.bearerTokenFile) headers.authorization = `Bearer ${readSecretFile(config.bearerTokenFile, "utf8").trim()}`;
  let body: string | undefined;
  if (config.method === "POST" && config.body !== undefined) {
    body = typeof config.body === "string" ? config.body : JSON.stringify(config.body);
    headers["content-type"] ??= typeof config.body === "string" ? "text/plain" : "application/json";
  }
  const tls = {
    ...(config.caFile ? { ca: readSecretFile(config.caFile) } : {}),
    ...(config.certFile ? { cert: readSecretFile(config.certFile) } : {}),
    ...(config.keyFile ? { key: readSecretFile(config.keyFile) } : {}),
  };
  return apiRequest(url, { method: config.method, headers, body, timeoutMs: config.timeout, tls });
}

/** The token-service pattern: GET or POST a URL, take the token and its expiry from JSON paths. */
export function createHttpProvider(config: HttpProviderConfig, now: () => number = Date.now): TokenProvider {
  const what = `asking ${new URL(config.url).origin} for a token`;
  return sharedTokenProvider(config, {
    async mint(): Promise<MintedToken> {
      let answer: ApiAnswer;
      try {
        answer = await send(config);
      } catch (error) {
        throw classifyFailure(error, what, now());
      }
      let data: unknown;
      try {
        data = JSON.parse(answer.body.toString("utf8"));
      } catch {
        data = undefined;
      }
      if (answer.status < 200 || answer.status >= 300) {
        const message = (data && typeof data === "object" && (atPath(data, "message") ?? atPath(data, "error"))) || "";
        throw classifyFailure(Object.assign(new Error(String(message)), { status: answer.status, response: { headers: flatHeaders(answer.headers), data: { message: String(message) } } }), what, now());
      }
      if (data === undefined) throw new ProviderError(`${what}: the answer is not JSON`, { transient: true });
      const token = atPath(data, config.tokenPath);
      if (typeof token !== "string" || !token) {
        throw new ProviderError(`${what}: no token at '${config.tokenPath}' in the answer`, { transient: false, hint: "set tokenPath to where the service puts the token" });
      }
      const absolute = config.expiresAtPath ? atPath(data, config.expiresAtPath) : undefined;
      const expiresAt = expiryFromFields(
        {
          expires_at: absolute,
          expires_in: config.expiresInPath ? atPath(data, config.expiresInPath) : undefined,
        },
        now(),
      );
      const username = config.usernamePath ? atPath(data, config.usernamePath) : undefined;
      // An expires_at is the service's clock; an expires_in is a length, counted from here.
      const date = absolute !== undefined && absolute !== null ? serverDate(answer.headers.date) : undefined;
      return { token, expiresAt, serverDate: date, username: typeof username === "string" ? username : undefined };
    },
  });
}
