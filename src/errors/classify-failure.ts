import { ProviderError } from "./keeper-error.ts";

// Network failures worth retrying, with the words a person reads in `status`.
const TRANSIENT_NETWORK_CODES = new Map([
  ["ECONNREFUSED", "connection refused"],
  ["ECONNRESET", "connection reset"],
  ["ETIMEDOUT", "timed out"],
  ["EPIPE", "connection reset"],
  ["ENOTFOUND", "host not found"],
  ["EAI_AGAIN", "DNS lookup failed"],
  ["EHOSTUNREACH", "host unreachable"],
  ["ENETUNREACH", "network unreachable"],
  ["UND_ERR_CONNECT_TIMEOUT", "connect timed out"],
  ["UND_ERR_HEADERS_TIMEOUT", "timed out waiting for the response"],
  ["UND_ERR_BODY_TIMEOUT", "timed out reading the response"],
  ["UND_ERR_SOCKET", "connection reset"],
  ["UND_ERR_CLOSED", "connection closed"],
]);

/** HTTP statuses worth retrying soon: the service is busy or briefly broken. */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Seconds or an HTTP date, as `Retry-After` allows; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined | null, nowMs: number): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

function networkCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && TRANSIENT_NETWORK_CODES.has(code)) return code;
    if ((e as { name?: unknown }).name === "TimeoutError" || (e as { name?: unknown }).name === "AbortError") {
      return "ETIMEDOUT";
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

interface HttpLikeError {
  status?: number;
  message?: string;
  response?: { headers?: Record<string, string | undefined>; data?: unknown };
}

/**
 * The one place that decides whether a failed call to a token API is transient (retry soon)
 * or permanent (the user must change something; retried slowly).
 */
export function classifyFailure(error: unknown, what: string, nowMs: number, hint?: string): ProviderError {
  if (error instanceof ProviderError) return error;
  const code = networkCode(error);
  const http = error as HttpLikeError;
  if (code || (http.status !== undefined && http.response === undefined && http.status >= 500)) {
    const reason = code ? `${TRANSIENT_NETWORK_CODES.get(code)} (${code})` : http.message || "network error";
    return new ProviderError(`${what}: ${reason}`, { cause: error, transient: true });
  }
  if (typeof http.status === "number") {
    const apiMessage = apiErrorMessage(http.response?.data) ?? http.message ?? "";
    const message = `${what}: HTTP ${http.status}${apiMessage ? ` ${apiMessage}` : ""}`;
    const headers = http.response?.headers;
    const retryAfterMs = parseRetryAfter(headers?.["retry-after"], nowMs) ?? rateLimitReset(headers, nowMs);
    return new ProviderError(message, {
      cause: error,
      transient: isTransientStatus(http.status) || retryAfterMs !== undefined,
      retryAfterMs,
      hint,
    });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ProviderError(`${what}: ${message}`, { cause: error, transient: true });
}

/**
 * GitHub's primary rate limit answers 403 (or 429) with `x-ratelimit-remaining: 0` and the epoch
 * second it resets at (GitHub's clock: counted from its Date header): transient, not before then.
 */
function rateLimitReset(headers: Record<string, string | undefined> | undefined, nowMs: number): number | undefined {
  const reset = headers?.["x-ratelimit-reset"];
  if (headers?.["x-ratelimit-remaining"] !== "0" || !reset || !/^\d+$/.test(reset)) return undefined;
  const serverNow = Date.parse(headers.date ?? "");
  return Math.max(1_000, Number(reset) * 1000 - (Number.isNaN(serverNow) ? nowMs : serverNow));
}

function apiErrorMessage(data: unknown): string | undefined {
  if (data && typeof data === "object" && typeof (data as { message?: unknown }).message === "string") {
    return (data as { message: string }).message;
  }
  return undefined;
}
