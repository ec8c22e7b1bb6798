import type { CheckResult, DoctorContext } from "./doctor-check.ts";
import { gitConfigEntries } from "./git-config.ts";

const HELPER = "git-credential-token-keeper";

function originOf(prefix: string): string {
  try {
    return new URL(prefix).origin;
  } catch {
    return prefix;
  }
}

function gitAtLeast(version: string, major: number, minor: number): boolean {
  const m = /(\d+)\.(\d+)/.exec(version);
  if (!m) return false;
  return Number(m[1]) > major || (Number(m[1]) === major && Number(m[2]) >= minor);
}

/**
 * Which way git gets the keeper's tokens: the shim on PATH (overrides of stale credentials,
 * retries), helper-only mode (`install --gitconfig`: git's config names the helper, for a git run
 * by absolute path), both, or neither. On git < 2.46 a helper configured after the keeper's gets
 * each token the keeper gave (git has no `ephemeral` before 2.46) and may keep it.
 */
export async function checkMode(ctx: DoctorContext, options: { shimFirst: boolean; realGit: string; realGitVersion: string | undefined }): Promise<CheckResult[]> {
  // The helper entries, in the order git reads them (its config files, then `-c`).
  const entries = await gitConfigEntries(ctx, options.realGit, "^credential\\..*helper$");
  const ours = entries.filter((e) => e.value.endsWith(`/${HELPER}`) || e.value === HELPER);
  const prefixes = [...new Set(ours.map((e) => e.key.slice("credential.".length, -".helper".length)))];
  const helperOnly = prefixes.length > 0;
  const results: CheckResult[] = [];
  if (options.shimFirst && helperOnly) {
    results.push({ level: "ok", what: `mode: the shim for git on PATH (overrides, retries), and helper-only for git run by absolute path (git's config names the keeper's helper for ${prefixes.join(", ")})` });
  } else if (options.shimFirst) {
    results.push({ level: "ok", what: "mode: the shim for git on PATH (overrides, retries); git run by absolute path gets no token", fix: "git-token-keeper install --gitconfig, if a tool runs git by absolute path" });
  } else if (helperOnly) {
    results.push({
      level: "warn",
      what: `mode: helper-only (git's config names the keeper's helper for ${prefixes.join(", ")}): fresh tokens, but no overrides of stale URLs, headers or rewrites and no retries`,
      fix: "put the shim first on PATH where the build's steps run git by name",
    });
  } else {
    results.push({ level: "fail", what: "mode: none: neither the shim is first on PATH nor git's config names the keeper's helper", fix: 'export PATH="$(git-token-keeper shim-path):$PATH", or git-token-keeper install --gitconfig' });
  }
  if (helperOnly && options.realGitVersion !== undefined && !gitAtLeast(options.realGitVersion, 2, 46)) {
    const first = entries.findIndex((e) => ours.includes(e));
    const served = (key: string) => key === "credential.helper" || prefixes.some((p) => p.startsWith(key.slice("credential.".length, -".helper".length)) || key.startsWith(`credential.${originOf(p)}`));
    const after = entries.slice(first + 1).filter((e) => e.value !== "" && !ours.includes(e) && served(e.key));
    for (const e of after) {
      results.push({
        level: "warn",
        what: `${e.key}=${e.value} comes after the keeper's helper: ${options.realGitVersion} hands it every token the keeper gave, and it may keep them (git 2.46+ marks them ephemeral)`,
        fix: `remove it, or set it before the keeper's entries (install --gitconfig resets what comes before), or upgrade git to 2.46 or newer`,
      });
    }
  }
  return results;
}
