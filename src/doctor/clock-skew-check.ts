import type { CheckResult, DoctorContext } from "./doctor-check.ts";

// GitHub accepts an App JWT issued up to 60 s in the future; past that every mint fails.
const FAIL_MS = 60_000;
const WARN_MS = 10_000;

/** This machine's clock against each token API's `Date` header. */
export async function checkClockSkew(ctx: DoctorContext, now: () => number = Date.now): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const url of ctx.apiUrls) {
    const before = now();
    let date: string | null;
    try {
      const response = await fetch(url, { method: "GET", signal: AbortSignal.timeout(5_000) });
      await response.body?.cancel();
      date = response.headers.get("date");
    } catch (error) {
      results.push({ level: "warn", what: `cannot reach ${url} to compare clocks: ${(error as Error).message}`, fix: "check the network path to the API" });
      continue;
    }
    const serverMs = date ? Date.parse(date) : Number.NaN;
    if (Number.isNaN(serverMs)) {
      results.push({ level: "skip", what: `${url} sent no Date header; clock not compared` });
      continue;
    }
    // The header has whole seconds; compare against the middle of the request.
    const skew = Math.round((before + now()) / 2 - serverMs);
    const text = `clock ${skew >= 0 ? "ahead of" : "behind"} ${url} by ${Math.abs(skew / 1000).toFixed(1)} s`;
    if (Math.abs(skew) > FAIL_MS) results.push({ level: "fail", what: text, fix: "synchronise this machine's clock (NTP: timedatectl set-ntp true)" });
    else if (Math.abs(skew) > WARN_MS) results.push({ level: "warn", what: text, fix: "synchronise this machine's clock (NTP)" });
    else results.push({ level: "ok", what: text });
  }
  return results;
}
