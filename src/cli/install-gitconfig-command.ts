import { readFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { cliStateDir } from "./cli-state-dir.ts";
import { shimDir } from "./shim-path-command.ts";

/** Where install --gitconfig notes each URL prefix it configured, so that it can undo exactly that. */
const MARK_KEY = "gittokenkeeper.installedprefix";
const HELPER_NAME = "git-credential-token-keeper";

/**
 * The URL prefixes the keeper serves, from the daemon's `routes` file: one per listed owner
 * (`origin/prefix/owner/`), the provider's prefix for one serving any owner. Never host-wide for
 * many owners (the shim's `origins` file may be, to keep every git call cheap; git's own config
 * holds any number of entries).
 */
export function servedPrefixes(stateDir: string): string[] {
  const text = readFileSync(join(stateDir, "routes"), "utf8");
  const out = new Set<string>();
  for (const line of text.split("\n")) {
    const [origin, , prefix, , owners] = line.trim().split(/\s+/);
    if (!origin || origin.startsWith("#") || !prefix || !owners) continue;
    if (owners === "*") out.add(`${origin}${prefix}`);
    else for (const owner of owners.split(",")) if (owner) out.add(`${origin}${prefix}${owner}/`);
  }
  return [...out].sort();
}

/**
 * `install --gitconfig [--system] [--dry-run] [--remove]`: helper-only mode, for a git the shim
 * never sees (run by absolute path, or resolved once at install time). Writes into git's global
 * (or system) config, for each URL prefix the keeper serves: a reset of the helpers configured
 * before, the keeper's helper, and `useHttpPath` (the helper routes by owner, which needs the
 * path), and notes the prefix under `gitTokenKeeper.installedPrefix`. A later run removes what it
 * wrote for prefixes no longer served; `--remove` removes all of it. Entries someone changed
 * since are left alone, with a word. Without the shim there are no overrides of stale
 * credentials and no retries.
 */
export async function installGitconfigCommand(options: { system?: boolean | undefined; dryRun?: boolean | undefined; remove?: boolean | undefined; config?: string | undefined }): Promise<number> {
  const scope = options.system ? "--system" : "--global";
  const where = `git's ${scope.slice(2)} config`;
  const git = (args: string[]) => execa("git", ["config", scope, ...args], { reject: false, env: { GIT_TOKEN_KEEPER_DISABLE: "1" } });
  const verb = (done: string, would: string) => (options.dryRun ? would : done);
  let served: string[] = [];
  if (!options.remove) {
    const stateDir = cliStateDir(options.config);
    try {
      served = servedPrefixes(stateDir);
    } catch {
      process.stderr.write(`git-token-keeper: no routes file in '${stateDir}': start the daemon first (its routes say what to configure), or set GIT_TOKEN_KEEPER_DIR\n`);
      return 1;
    }
  }
  const installed = String((await git(["--get-all", MARK_KEY])).stdout)
    .split("\n")
    .filter(Boolean);

  // What an earlier run wrote for prefixes no longer served (all of it, with --remove).
  for (const prefix of installed.filter((p) => !served.includes(p))) {
    const key = `credential.${prefix}`;
    const helpers = String((await git(["--get-all", `${key}.helper`])).stdout).split("\n");
    const ours = helpers.length === 2 && helpers[0] === "" && (helpers[1] ?? "").endsWith(HELPER_NAME);
    if (!ours && helpers.join("") !== "") {
      process.stdout.write(`left ${key}.helper in ${where}: it was changed since git-token-keeper wrote it; remove it by hand if it is no longer wanted\n`);
    } else {
      process.stdout.write(`${verb("removed", "would remove")} ${key}.helper and ${key}.useHttpPath from ${where}\n`);
      if (!options.dryRun) {
        await git(["--unset-all", `${key}.helper`]);
        await git(["--unset-all", `${key}.useHttpPath`]);
        await git(["--remove-section", key]);
      }
    }
    if (!options.dryRun) await git(["--fixed-value", "--unset-all", MARK_KEY, prefix]);
  }
  if (options.remove) {
    if (installed.length === 0) process.stdout.write(`git-token-keeper wrote nothing into ${where}; nothing to remove\n`);
    else if (!options.dryRun) await git(["--remove-section", "gittokenkeeper"]);
    return 0;
  }

  const helper = join(shimDir(), HELPER_NAME);
  for (const prefix of served) {
    const key = `credential.${prefix}`;
    process.stdout.write(`${verb("set", "would set")} ${key}.helper (reset, then ${helper}) and ${key}.useHttpPath=true in ${where}\n`);
    if (options.dryRun) continue;
    await git(["--unset-all", `${key}.helper`]);
    const steps = [["--add", `${key}.helper`, ""], ["--add", `${key}.helper`, helper], [`${key}.useHttpPath`, "true"], ...(installed.includes(prefix) ? [] : [["--add", MARK_KEY, prefix]])];
    for (const args of steps) {
      const r = await git(args);
      if (r.exitCode !== 0) {
        process.stderr.write(`git-token-keeper: git config ${scope} ${args.join(" ")} failed: ${String(r.stderr).trim()}\n`);
        return 1;
      }
    }
  }
  if (served.length === 0) process.stdout.write("the keeper serves nothing yet; nothing to configure\n");
  return 0;
}
