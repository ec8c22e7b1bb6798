#!/usr/bin/env node
import { describeError } from "../errors/keeper-error.ts";
import { isLogLevel, type LogFormat } from "../log/log-level.ts";
import { VERSION } from "../version.ts";

// Not `import … from "node:util"`: an ES module import of node:util builds its whole namespace,
// which loads worker_threads, streams and more that a daemon or a probe never uses.
const { parseArgs } = process.getBuiltinModule("node:util");

const USAGE = `usage: git-token-keeper <command> [options]

commands:
  run [--config FILE] [--log-format json|text] [--log-level error|warn|info|debug]
                         run the daemon in the foreground (SIGTERM/SIGINT stop it)
  broker --config FILE [--log-format json|text] [--log-level …]
                         run the token broker: the providers' keys in one place, scoped tokens
                         for keepers that prove their workload identity (docs/broker.md)
  status [--json]        show each token's provider, git URL, owner, expiry, last mint and
                         last error; exit 0 only when the daemon is alive and nothing fails
  refresh [--provider NAME]
                         make the running daemon re-mint now
  shim-path              print the folder holding the git shim and credential helper
  install-shim DIR       copy the shim and helper into DIR (a volume shared with build containers)
  install --runner github|gitlab|jenkins [--prefix DIR] [--runner-dir DIR] [--dry-run]
                         the non-root install steps for a runner's user: shim, user unit,
                         runner env files; prints what it changes (--dry-run: only prints)
  install --gitconfig [--system] [--dry-run] [--remove]
                         helper-only mode, for a git run by absolute path: the helper and
                         useHttpPath for what the keeper serves in git's global (system) config;
                         a rerun removes what it wrote for what is no longer served, --remove all
  token --url URL        print the current token for a URL (for gh, curl, publishers)
  exec --url URL [--env NAME] -- CMD [ARG…]
                         run a command with the token in NAME (default GH_TOKEN for GitHub
                         Apps, GITLAB_TOKEN for GitLab): the only way a token enters an environment
  doctor [--repo URL]    check the install (PATH, git version, state dir, daemon, minting,
                         clock, stale credentials; --repo: an ls-remote through the shim)
  version                print the version

The config is --config, else $GIT_TOKEN_KEEPER_CONFIG, else /etc/git-token-keeper/config.yaml.
`;

const OPTIONS = {
  config: { type: "string" },
  json: { type: "boolean" },
  provider: { type: "string" },
  repo: { type: "string" },
  runner: { type: "string" },
  url: { type: "string" },
  env: { type: "string" },
  prefix: { type: "string" },
  "runner-dir": { type: "string" },
  "dry-run": { type: "boolean" },
  gitconfig: { type: "boolean" },
  system: { type: "boolean" },
  remove: { type: "boolean" },
  "log-format": { type: "string" },
  "log-level": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const ALLOWED: Record<string, readonly string[]> = {
  run: ["config", "log-format", "log-level"],
  broker: ["config", "log-format", "log-level"],
  status: ["config", "json"],
  refresh: ["config", "provider"],
  "shim-path": [],
  "install-shim": [],
  doctor: ["config", "repo"],
  install: ["runner", "prefix", "runner-dir", "dry-run", "gitconfig", "system", "remove", "config"],
  token: ["config", "url"],
  exec: ["config", "url", "env"],
  version: [],
};

function fail(message: string): number {
  process.stderr.write(`git-token-keeper: ${message}\n${USAGE}`);
  return 2;
}

export async function main(argv: string[]): Promise<number> {
  // Everything after `--` belongs to the command `exec` runs.
  const dashes = argv.indexOf("--");
  const trailing = dashes >= 0 ? argv.slice(dashes + 1) : [];
  let parsed;
  try {
    parsed = parseArgs({ args: dashes >= 0 ? argv.slice(0, dashes) : argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    return fail(describeError(error));
  }
  const { values, positionals } = parsed;
  const command = positionals[0];
  if (values.help || command === "help" || command === undefined) {
    process.stdout.write(USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  const allowed = ALLOWED[command];
  if (!allowed) return fail(`unknown command '${command}'`);
  const maxPositionals = command === "install-shim" ? 2 : 1;
  if (trailing.length > 0 && command !== "exec") return fail(`'${command}' takes no command after --`);
  if (positionals.length > maxPositionals) return fail(`'${command}' takes no argument '${positionals[maxPositionals]}'`);
  const extra = Object.keys(values).find((k) => !allowed.includes(k));
  if (extra) return fail(`'${command}' takes no --${extra}`);
  const logFormat = values["log-format"];
  if (logFormat !== undefined && logFormat !== "json" && logFormat !== "text") {
    return fail(`--log-format must be json or text, got '${logFormat}'`);
  }
  const logLevel = values["log-level"] ?? process.env.GIT_TOKEN_KEEPER_LOG_LEVEL;
  if (logLevel !== undefined && !isLogLevel(logLevel)) return fail(`--log-level must be error, warn, info or debug, got '${logLevel}'`);
  // Each command is loaded when asked for: `status`, which probes run, loads no daemon.
  switch (command) {
    case "run":
      return (await import("./run-command.ts")).runCommand({ config: values.config, logFormat: logFormat as LogFormat | undefined, logLevel });
    case "broker":
      return (await import("./broker-command.ts")).brokerCommand({ config: values.config, logFormat: logFormat as LogFormat | undefined, logLevel });
    case "status":
      return (await import("./status-command.ts")).statusCommand({ config: values.config, json: values.json });
    case "refresh":
      return (await import("./refresh-command.ts")).refreshCommand({ config: values.config, provider: values.provider });
    case "shim-path":
      return (await import("./shim-path-command.ts")).shimPathCommand();
    case "install-shim":
      return (await import("./install-shim-command.ts")).installShimCommand(positionals[1]);
    case "install":
      if (values.gitconfig) {
        if (values.runner || values.prefix || values["runner-dir"]) return fail("install --gitconfig takes no --runner, --prefix or --runner-dir");
        return (await import("./install-gitconfig-command.ts")).installGitconfigCommand({ system: values.system, dryRun: values["dry-run"], remove: values.remove, config: values.config });
      }
      if (values.system) return fail("--system goes with --gitconfig");
      if (values.remove) return fail("--remove goes with --gitconfig");
      return (await import("./install-command.ts")).installCommand({ runner: values.runner, prefix: values.prefix, runnerDir: values["runner-dir"], dryRun: values["dry-run"] });
    case "token":
      return (await import("./token-command.ts")).tokenCommand({ url: values.url, config: values.config });
    case "exec":
      return (await import("./token-command.ts")).execCommand({ url: values.url, env: values.env, config: values.config, command: trailing });
    case "doctor":
      return (await import("./doctor-command.ts")).doctorCommand({ config: values.config, repo: values.repo });
    default:
      process.stdout.write(`${VERSION}\n`);
      return 0;
  }
}

// The daemon is mostly idle, and nothing it runs is hot: V8's compilers beyond its interpreter
// and its default heap sizing cost resident memory, not speed that matters here (about 20 MB
// with one token, 70 MB after minting 1,000 at start; docs/performance.md). `run` replaces
// itself, same pid, with those flags; so does `broker`, which answers a cached token in about a
// millisecond either way and keeps 26 MB less resident with them (bench section 9).
// GIT_TOKEN_KEEPER_NO_REEXEC=1 keeps Node.js's defaults.
// A failed execve aborts Node.js, so it is tried only when the binary can still be executed.
const DAEMON_V8_FLAGS = ["--max-semi-space-size=1", "--optimize-for-size", "--no-opt", "--no-maglev", "--no-sparkplug", "--single-threaded-gc"];
const execve = (process as unknown as { execve?: (file: string, args: string[], env: NodeJS.ProcessEnv) => never }).execve;
if ((process.argv[2] === "run" || process.argv[2] === "broker") && !process.execArgv.includes(DAEMON_V8_FLAGS[0] as string) && execve && !process.env.GIT_TOKEN_KEEPER_NO_REEXEC && canExecute(process.execPath)) {
  execve(process.execPath, [process.execPath, ...DAEMON_V8_FLAGS, ...process.execArgv, ...process.argv.slice(1)], process.env);
}

function canExecute(file: string): boolean {
  const fs = process.getBuiltinModule("node:fs");
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`git-token-keeper: ${describeError(error)}\n`);
    process.exit(1);
  },
);
