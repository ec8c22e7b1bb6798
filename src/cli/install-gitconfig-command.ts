import { readFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { cliStateDir } from "./cli-state-dir.ts";
import { shimDir } from "./shim-path-command.ts";

/** The URL prefixes the keeper serves, from the daemon's `origins` file (see shim/git). */
export function servedPrefixes(stateDir: string): string[] {
  const text = readFileSync(join(stateDir, "origins"), "utf8");
  return text.split("\n").flatMap((line) => {
    const [origin, ssh, ...prefixes] = line.trim().split(/\s+/);
    if (!origin || origin.startsWith("#")) return [];
    return (ssh === undefined ? ["/"] : prefixes).map((p) => `${origin}${p}`);
  });
}

/**
 * `install --gitconfig [--system] [--dry-run]`: helper-only mode, for a git the shim never sees
 * (run by absolute path, or resolved once at install time). Writes into git's global (or system)
 * config, for each URL prefix the keeper serves: a reset of the helpers configured before, the
 * keeper's helper, and `useHttpPath` (the helper routes by owner, which needs the path). Without
 * the shim there are no overrides of stale credentials and no retries.
 */
export async function installGitconfigCommand(options: { system?: boolean | undefined; dryRun?: boolean | undefined; config?: string | undefined }): Promise<number> {
  const stateDir = cliStateDir(options.config);
  let prefixes: string[];
  try {
    prefixes = servedPrefixes(stateDir);
  } catch {
    process.stderr.write(`git-token-keeper: no origins file in '${stateDir}': start the daemon first (its routes say what to configure), or set GIT_TOKEN_KEEPER_DIR\n`);
    return 1;
  }
  const scope = options.system ? "--system" : "--global";
  const helper = join(shimDir(), "git-credential-token-keeper");
  const git = (args: string[]) => execa("git", ["config", scope, ...args], { reject: false, env: { GIT_TOKEN_KEEPER_DISABLE: "1" } });
  for (const prefix of prefixes) {
    const key = `credential.${prefix}`;
    process.stdout.write(`${options.dryRun ? "would set" : "set"} ${key}.helper (reset, then ${helper}) and ${key}.useHttpPath=true in git's ${scope.slice(2)} config\n`);
    if (options.dryRun) continue;
    await git(["--unset-all", `${key}.helper`]);
    for (const args of [["--add", `${key}.helper`, ""], ["--add", `${key}.helper`, helper], [`${key}.useHttpPath`, "true"]]) {
      const r = await git(args);
      if (r.exitCode !== 0) {
        process.stderr.write(`git-token-keeper: git config ${scope} ${args.join(" ")} failed: ${String(r.stderr).trim()}\n`);
        return 1;
      }
    }
  }
  if (prefixes.length === 0) process.stdout.write("the keeper serves nothing yet; nothing to configure\n");
  return 0;
}
