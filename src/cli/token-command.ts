import { constants } from "node:os";
import { parseTokenRecord, servedUntil, type TokenRecord } from "../store/token-file.ts";
import { findRoute, type RouteMatch } from "../store/find-route.ts";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { daemonDown, readStatusFile } from "../store/daemon-status.ts";
import { cliStateDir } from "./cli-state-dir.ts";
import { requestFromDaemon } from "./daemon-request.ts";

/** The current token for a URL, minting it first when the daemon has none yet. */
async function currentToken(url: string, config: string | undefined): Promise<{ record: TokenRecord; route: RouteMatch; type: string } | string> {
  const stateDir = cliStateDir(config);
  const status = readStatusFile(stateDir);
  const down = daemonDown(status, stateDir);
  const route = findRoute(stateDir, url);
  if (!route) return `no provider serves ${url}; compare it with the providers' gitUrl, owners and pathPrefix`;
  const read = () => {
    try {
      return parseTokenRecord(readFileSync(join(stateDir, "tokens", route.provider, route.scope), "utf8"));
    } catch {
      return undefined;
    }
  };
  let record = read();
  const servable = (r: TokenRecord | undefined): r is TokenRecord => r !== undefined && servedUntil(r) > Date.now() / 1000;
  // As the helper: a token that may still be served is used while a new one cannot be minted
  // (an outage starts refreshBefore ahead of the expiry); a new one is asked for only when due.
  if (!down && (!record || record.refreshAt <= Date.now() / 1000)) {
    const failure = await requestFromDaemon(stateDir, "mint", route.provider, route.scope, 60_000);
    const fresh = read();
    if (failure && !servable(fresh)) return `no token for ${url}: ${failure}`;
    if (failure) process.stderr.write(`git-token-keeper: a new token could not be minted (${failure}); using the current one, valid until ${new Date(servedUntil(fresh!) * 1000).toISOString()}\n`);
    record = fresh;
  }
  if (!record) return down ?? `no token for ${url}`;
  if (!servable(record)) return `the token for ${url} has expired${down ? ` and ${down}` : ""}`;
  const type = status?.providers.find((p) => p.name === route.provider)?.type ?? "";
  return { record, route, type };
}

/** `token --url URL`: prints the current token for other tools (gh, curl, publishers). */
export async function tokenCommand(options: { url?: string | undefined; config?: string | undefined }): Promise<number> {
  if (!options.url) {
    process.stderr.write("git-token-keeper: token needs --url https://HOST/OWNER/REPO\n");
    return 2;
  }
  const found = await currentToken(options.url, options.config);
  if (typeof found === "string") {
    process.stderr.write(`git-token-keeper: ${found}\n`);
    return 1;
  }
  process.stdout.write(`${found.record.token}\n`);
  return 0;
}

const DEFAULT_ENV: Record<string, string> = { "github-app": "GH_TOKEN", gitlab: "GITLAB_TOKEN", "azure-devops": "AZURE_DEVOPS_EXT_PAT" };

/**
 * `exec --url URL [--env NAME] -- CMD …`: runs a command with the token in one environment
 * variable: the one place a token enters an environment, by the user's explicit choice.
 */
export async function execCommand(options: { url?: string | undefined; env?: string | undefined; config?: string | undefined; command: string[] }): Promise<number> {
  if (!options.url || options.command.length === 0) {
    process.stderr.write("git-token-keeper: exec needs --url URL and a command after --, e.g. exec --url https://github.com/acme/app -- gh pr list\n");
    return 2;
  }
  if (options.env !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(options.env)) {
    process.stderr.write(`git-token-keeper: --env '${options.env}' is not a variable name\n`);
    return 2;
  }
  const found = await currentToken(options.url, options.config);
  if (typeof found === "string") {
    process.stderr.write(`git-token-keeper: ${found}\n`);
    return 1;
  }
  const name = options.env ?? DEFAULT_ENV[found.type];
  if (!name) {
    process.stderr.write(`git-token-keeper: say which variable gets the token: --env NAME (no default for ${found.type || "this"} providers)\n`);
    return 2;
  }
  const [file, ...args] = options.command;
  const result = await execa(file as string, args, { stdio: "inherit", reject: false, env: { [name]: found.record.token } });
  // As a shell says it: 127 for a command not found, 126 for one that cannot run.
  const code = (result as { code?: string }).code;
  if (result.exitCode === undefined && !result.signal) {
    process.stderr.write(`git-token-keeper: cannot run '${file}': ${code === "ENOENT" ? "command not found" : (result as { originalMessage?: string }).originalMessage ?? result.message}\n`);
    return code === "ENOENT" ? 127 : 126;
  }
  if (result.signal) return 128 + (constants.signals[result.signal as keyof typeof constants.signals] ?? 0);
  return result.exitCode ?? 1;
}
