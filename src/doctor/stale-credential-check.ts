import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import type { CheckResult, DoctorContext } from "./doctor-check.ts";
import { gitConfigEntries } from "./git-config.ts";

/** The URL's origin and its userinfo with the secret part masked (a token may be the user name). */
function originOf(url: string): { origin: string; userinfo: string; hasPassword: boolean } | undefined {
  try {
    const u = new URL(url);
    if (u.protocol !== "https:" && u.protocol !== "http:") return undefined;
    return { origin: `${u.protocol}//${u.host}`, userinfo: u.password ? `${u.username}:***` : u.username ? "***" : "", hasPassword: u.password !== "" };
  } catch {
    return undefined;
  }
}

/** Submodules' own config files (two levels), where their remote URLs live. */
function moduleConfigs(commonDir: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const config = join(dir, name, "config");
      if (existsSync(config)) found.push(config);
      if (depth < 2) walk(join(dir, name, "modules"), depth + 1);
    }
  };
  walk(join(commonDir, "modules"), 1);
  return found;
}

/**
 * Credentials that other tools left for a configured host. The shim overrides each of them, but
 * plain git (a step that bypasses PATH, another shell) would still use them.
 */
export async function checkStaleCredentials(ctx: DoctorContext, git: string, options: { shimInFront: boolean } = { shimInFront: true }): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  // Without the shim in front (helper-only mode) nothing overrides what is left: it must go.
  const overrides = (done: string) => (options.shimInFront ? `the shim ${done}` : "without the shim in front nothing overrides it (helper-only mode)");
  const configured = new Set(ctx.origins);
  const run = (args: string[]) => execa(git, args, { cwd: ctx.cwd, reject: false, env: { ...ctx.env, GIT_TOKEN_KEEPER_DISABLE: "1" } });
  const entries = await gitConfigEntries(ctx, git, "^(remote\\..*\\.(url|pushurl)|url\\..*\\.(insteadof|pushinsteadof)|http\\.(.*\\.)?extraheader|credential\\..*helper)$");
  for (const { key, value } of entries) {
    if (/^remote\..*\.(url|pushurl)$/.test(key)) {
      const o = originOf(value);
      if (o && configured.has(o.origin) && o.userinfo.includes(":")) {
        results.push({ level: "warn", what: `${key} holds a password (${o.userinfo}@${new URL(value).host}); ${overrides("overrides it")}`, fix: `git remote set-url ${key.split(".")[1]} ${o.origin}${new URL(value).pathname}` });
      }
    } else if (/^url\..*\.(insteadof|pushinsteadof)$/.test(key)) {
      const base = key.slice(4, key.lastIndexOf("."));
      const o = originOf(base);
      if (o && configured.has(o.origin) && o.userinfo) {
        const kind = key.endsWith(".pushinsteadof") ? "pushInsteadOf" : "insteadOf";
        results.push({
          level: "warn",
          what: `url.${base.replace(/\/\/[^/]*@/, `//${o.userinfo}@`)}.${kind} rewrites ${value} to a URL with a token; ${overrides("overrides it")}`,
          fix: `remove it where it is set (git config --show-origin --get-regexp '^url\\.' finds the file), and let the keeper's helper answer`,
        });
      }
    } else if (/^http\.(.*\.)?extraheader$/.test(key) && /^\s*authorization\s*:/i.test(value)) {
      // http.extraheader (every URL) or http.<url>.extraheader
      const url = key === "http.extraheader" ? "" : key.slice(5, -12);
      const o = url ? originOf(url) : undefined;
      if (!url || (o && configured.has(o.origin))) {
        results.push({ level: "warn", what: `${key} sends an Authorization header (actions/checkout persists one); ${overrides("resets it")}`, fix: `git config --unset-all ${key} (or persist-credentials: false in actions/checkout)` });
      }
    } else if (/^credential\./.test(key) && /(^|[\s/-])(store|cache)(\s|$)/.test(value)) {
      results.push({ level: "warn", what: `${key}=${value} keeps old tokens; ${options.shimInFront ? "the shim skips it for configured hosts" : "install --gitconfig resets it for what the keeper serves"}`, fix: `git config --unset ${key} (and remove stale lines from ~/.git-credentials)` });
    }
  }
  const common = String((await run(["rev-parse", "--path-format=absolute", "--git-common-dir"])).stdout).trim();
  for (const file of common ? moduleConfigs(common) : []) {
    for (const { value } of await gitConfigEntries(ctx, git, "^remote\\..*\\.(url|pushurl)$", file)) {
      const o = originOf(value);
      if (o && configured.has(o.origin) && o.userinfo) {
        results.push({ level: "warn", what: `submodule config ${file} has a URL with a token (${o.userinfo}@${new URL(value).host}); ${overrides("overrides it")}`, fix: `git -C <submodule> remote set-url origin ${o.origin}${new URL(value).pathname}` });
      }
    }
  }
  const stored = join(ctx.env.HOME ?? "", ".git-credentials");
  try {
    for (const line of readFileSync(stored, "utf8").split("\n")) {
      const o = originOf(line.trim());
      if (o && configured.has(o.origin)) {
        results.push({ level: "warn", what: `${stored} holds a credential for ${o.origin}`, fix: `remove that line from ${stored}` });
      }
    }
  } catch {
    // No stored credentials.
  }
  if (results.length === 0) results.push({ level: "ok", what: "no stale credentials for configured hosts in git config or ~/.git-credentials" });
  return results;
}
