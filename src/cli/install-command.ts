import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { installShim, shimFiles } from "./install-shim-command.ts";
import { shimDir } from "./shim-path-command.ts";

export type Runner = "github" | "gitlab" | "jenkins";
export const RUNNERS: readonly Runner[] = ["github", "gitlab", "jenkins"];

interface Change {
  path: string;
  /** New content, or undefined when the file is left as it is. */
  content: string | undefined;
  why: string;
}

function userUnit(): string {
  const unit = readFileSync(join(shimDir(), "..", "systemd", "user", "git-token-keeper.service"), "utf8");
  const cli = fileURLToPath(new URL("./main.js", import.meta.url));
  // A user install may put nothing on systemd's search path: run this very build with this Node.js.
  return unit.replace("ExecStart=git-token-keeper", `ExecStart=${process.execPath} ${cli.replace(/\.ts$/, ".js")}`);
}

function prependToPathFile(file: string, shim: string, fallbackPath: string): Change {
  const current = existsSync(file) ? readFileSync(file, "utf8").trim() : fallbackPath;
  const parts = current.split(":").filter((p) => p && p !== shim);
  const next = `${[shim, ...parts].join(":")}\n`;
  return { path: file, content: existsSync(file) && readFileSync(file, "utf8") === next ? undefined : next, why: "the runner's PATH, with the shim first" };
}

function setEnvLine(file: string, name: string, value: string): Change {
  const lines = existsSync(file) ? readFileSync(file, "utf8").split("\n").filter((l) => l !== "") : [];
  const kept = lines.filter((l) => !l.startsWith(`${name}=`));
  const next = `${[...kept, `${name}=${value}`].join("\n")}\n`;
  return { path: file, content: existsSync(file) && readFileSync(file, "utf8") === next ? undefined : next, why: `${name} for jobs` };
}

/**
 * `install --runner github|gitlab|jenkins [--prefix DIR] [--runner-dir DIR] [--dry-run]`: the
 * non-root parts of an install (the shim, a user unit, the runner's env files), printing what
 * it changes. Root parts (a system unit, users and groups) stay with the admin and the docs.
 */
export function installCommand(options: { runner?: string | undefined; prefix?: string | undefined; runnerDir?: string | undefined; dryRun?: boolean | undefined; env?: NodeJS.ProcessEnv }): number {
  const env = options.env ?? process.env;
  if (!options.runner || !RUNNERS.includes(options.runner as Runner)) {
    process.stderr.write(`git-token-keeper: --runner must be one of ${RUNNERS.join(", ")}${options.runner ? `, got '${options.runner}'` : ""}\n`);
    return 2;
  }
  const runner = options.runner as Runner;
  const prefix = resolve(options.prefix ?? env.HOME ?? ".");
  const shim = join(prefix, ".local", "share", "git-token-keeper", "shim");
  const runtime = env.XDG_RUNTIME_DIR || `/run/user/${process.getuid?.() ?? 0}`;
  const stateDir = join(runtime, "git-token-keeper");
  const changes: Change[] = [{ path: join(prefix, ".config", "systemd", "user", "git-token-keeper.service"), content: userUnit(), why: "the daemon as a user service" }];
  const next: string[] = [];

  if (runner === "github") {
    const runnerDir = resolve(options.runnerDir ?? join(prefix, "actions-runner"));
    if (!existsSync(join(runnerDir, "config.sh")) && !existsSync(join(runnerDir, ".runner"))) {
      process.stderr.write(`git-token-keeper: no GitHub Actions runner in ${runnerDir}; pass --runner-dir with the folder holding config.sh\n`);
      return 2;
    }
    changes.push(prependToPathFile(join(runnerDir, ".path"), shim, env.PATH ?? "/usr/local/bin:/usr/bin:/bin"));
    changes.push(setEnvLine(join(runnerDir, ".env"), "GIT_TOKEN_KEEPER_DIR", stateDir));
    next.push(`restart the runner so that it reads .path and .env (sudo ./svc.sh stop && sudo ./svc.sh start in ${runnerDir})`);
  } else if (runner === "gitlab") {
    next.push(
      "add to the runner's [[runners]] section in config.toml (shell executor), then restart gitlab-runner:",
      `  pre_get_sources_script = "export PATH=${shim}:$PATH GIT_TOKEN_KEEPER_DIR=${stateDir}"`,
      `  pre_build_script = "export PATH=${shim}:$PATH GIT_TOKEN_KEEPER_DIR=${stateDir}"`,
    );
  } else {
    next.push(
      "in Jenkins: Manage Jenkins → Nodes → this agent → Configure → Environment variables:",
      `  PATH+GIT_TOKEN_KEEPER = ${shim}`,
      `  GIT_TOKEN_KEEPER_DIR = ${stateDir}`,
      `or set the Git tool's "Path to Git executable" to ${join(shim, "git")} (Manage Jenkins → Tools)`,
    );
  }
  next.unshift(
    `write the config to ${join(prefix, ".config", "git-token-keeper", "config.yaml")} (see README: Configuration)`,
    "systemctl --user daemon-reload && systemctl --user enable --now git-token-keeper",
    `loginctl enable-linger ${env.USER ?? "$USER"}   # so the user service runs without a login`,
  );

  const verb = (c: Change, existed: boolean) => (c.content === undefined ? "unchanged" : options.dryRun ? (existed ? "would update" : "would create") : existed ? "updated" : "created");
  const shimCurrent = shimFiles().every((f) => existsSync(join(shim, f)) && readFileSync(join(shim, f), "utf8") === readFileSync(join(shimDir(), f), "utf8"));
  process.stdout.write(`${shimCurrent ? "unchanged" : options.dryRun ? (existsSync(shim) ? "would update" : "would create") : existsSync(shim) ? "updated" : "created"}  ${shim}/  (the git shim and credential helper)\n`);
  if (!shimCurrent && !options.dryRun) installShim(shim);
  for (const change of changes) {
    const existed = existsSync(change.path);
    if (change.content !== undefined && existed && readFileSync(change.path, "utf8") === change.content) change.content = undefined;
    process.stdout.write(`${verb(change, existed)}  ${change.path}  (${change.why})\n`);
    if (change.content !== undefined && !options.dryRun) {
      mkdirSync(dirname(change.path), { recursive: true });
      writeFileSync(change.path, change.content);
    }
  }
  process.stdout.write(`\nnext:\n${next.map((l) => (l.startsWith("  ") ? `  ${l}` : `  - ${l}`)).join("\n")}\n`);
  return 0;
}
