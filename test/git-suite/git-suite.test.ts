import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { KeeperProcess } from "../support/keeper-process.ts";
import { skipBecause } from "../support/require-tool.ts";
import { runCli } from "../support/run-cli.ts";
import { RESULTS_DIR } from "../support/secrets-audit.ts";

/**
 * git's own test suite, run against the installed git twice: plainly, and with the shim in
 * front (GIT_TEST_INSTALLED = a folder whose git is the shim) while the real daemon serves an
 * origin the tests do not use. Every test that passes with plain git must pass through the
 * shim. The suite is built by .ci/git-test-suite.sh from Debian's source package of exactly the
 * installed git, and runs as an unprivileged user (lib-httpd refuses root) with Debian's apache2.
 */
const USER = "gtk-git-tests";
const SCRIPTS = /^t(55\d\d|56\d\d|57\d\d|58\d\d|540\d|74\d\d|030[0-3])-.*\.sh$/;
const SERVED_ORIGIN = "http://127.0.0.1:9";
const PROBE = "t9990-token-keeper-probe.sh";
const CONCURRENCY = 2;
const SCRIPT_TIMEOUT_MS = 10 * 60_000;

function suiteDir(): string | undefined {
  let version: string;
  try {
    version = execFileSync("dpkg-query", ["-W", "-f", "${Version}", "git"], { encoding: "utf8" });
  } catch {
    skipBecause("git's test suite needs Debian's git package (dpkg-query found none); .ci/run builds the suite with .ci/git-test-suite.sh");
    return undefined;
  }
  const root = join("/var/tmp/gtk-git-tests", version.replace(/[^A-Za-z0-9.]/g, "_"));
  if (process.getuid?.() !== 0) {
    skipBecause("git's test suite runs as the user gtk-git-tests, which needs root to switch to; .ci/run runs as root");
    return undefined;
  }
  try {
    execFileSync("id", ["-u", USER], { stdio: "ignore" });
  } catch {
    skipBecause(`the user ${USER} is missing; .ci/run creates it with .ci/git-test-suite.sh`);
    return undefined;
  }
  if (!existsSync(join(root, "built"))) {
    skipBecause(`git's test suite is not built in ${root}; .ci/run builds it with .ci/git-test-suite.sh`);
    return undefined;
  }
  return join(root, "src");
}

interface ScriptResult {
  script: string;
  exitCode: number | null;
  /** test number → "ok" | "not ok" | "skip" | "todo" */
  tests: Map<number, string>;
  names: Map<number, string>;
  output: string;
}

/**
 * Runs one t/ script as the suite's user, with only the environment given. `portBase` moves the
 * ports its servers listen on (lib-httpd and git-daemon take the script's number), so that the
 * same script can run plainly and through the shim at once.
 */
function runScript(tDir: string, script: string, env: Record<string, string>, portBase: number): Promise<ScriptResult> {
  const number = Number(/^t(\d{4})/.exec(script)?.[1] ?? 9990);
  const ports = { LIB_HTTPD_PORT: String(portBase + number), LIB_GIT_DAEMON_PORT: String(portBase + number) };
  return new Promise((resolve) => {
    const child = spawn("runuser", ["-u", USER, "--", "env", "-i", ...Object.entries({ ...env, ...ports }).map(([k, v]) => `${k}=${v}`), "sh", `./${script}`, `--root=${env.GTK_TRASH_ROOT}`], {
      cwd: tDir,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (output += c.toString("utf8")));
    const timer = setTimeout(() => {
      output += `\n(killed after ${SCRIPT_TIMEOUT_MS / 1000} s)\n`;
      try {
        process.kill(-(child.pid as number), "SIGKILL");
      } catch {
        // gone already
      }
    }, SCRIPT_TIMEOUT_MS);
    // A server a script leaves behind (lib-httpd's apache runs in a session of its own) keeps
    // the output pipes open: the result is the script's exit, its output what came by then;
    // what is left of the script is killed.
    let done = false;
    const finish = (code: number | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.stdout.destroy();
      child.stderr.destroy();
      spawnSync("pkill", ["-KILL", "-u", USER, "-f", `${env.GTK_TRASH_ROOT}/trash directory\\.${script.replace(/\.sh$/, "")}`]);
      const tests = new Map<number, string>();
      const names = new Map<number, string>();
      for (const line of output.split("\n")) {
        const m = /^(not ok|ok) (\d+) - (.*)$/.exec(line);
        if (!m) continue;
        const n = Number(m[2]);
        const name = m[3] as string;
        names.set(n, name.replace(/ # (skip|TODO).*$/, ""));
        tests.set(n, / # skip /.test(` ${name} `) || name.startsWith("# skip") ? "skip" : /# TODO/.test(name) ? "todo" : (m[1] as string));
      }
      resolve({ script, exitCode: code, tests, names, output });
    };
    child.on("close", (code) => finish(code));
    child.on("exit", (code) => setTimeout(() => finish(code), 5_000));
  });
}

interface Run {
  env: Record<string, string>;
  portBase: number;
  results: Map<string, ScriptResult>;
}

/** Every script of every run, CONCURRENCY at a time, the runs of one script side by side. */
async function runAll(tDir: string, scripts: string[], runs: Run[]): Promise<void> {
  const queue = scripts.flatMap((script) => runs.map((run) => ({ script, run })));
  const worker = async () => {
    for (let job = queue.shift(); job !== undefined; job = queue.shift()) job.run.results.set(job.script, await runScript(tDir, job.script, job.run.env, job.run.portBase));
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

const tDirOf = suiteDir();

describe.skipIf(tDirOf === undefined)("git's own test suite through the shim", () => {
  const work = mkdtempSync("/var/tmp/gtk-git-suite-");
  let keeper: KeeperProcess | undefined;

  afterAll(async () => {
    await keeper?.stop();
    rmSync(work, { recursive: true, force: true });
    if (tDirOf) rmSync(join(tDirOf, "t", PROBE), { force: true });
  });

  it("every test that passes with plain git passes through the shim", async () => {
    const tDir = join(tDirOf as string, "t");
    const gid = Number(execFileSync("id", ["-g", USER], { encoding: "utf8" }).trim());
    const uid = Number(execFileSync("id", ["-u", USER], { encoding: "utf8" }).trim());
    chmodSync(work, 0o755);
    // The shim copied by install-shim, as users copy it, where the suite's user can read it
    // (this checkout may be in a folder only root can enter).
    const shim = join(work, "shim");
    const installed = await runCli(["install-shim", shim]);
    expect(installed.exitCode, installed.stderr).toBe(0);
    chmodSync(shim, 0o755);
    // The real daemon, as root, sharing its state dir with the suite's user through its group;
    // its one provider serves an origin the tests never use.
    const runtime = join(work, "runtime");
    mkdirSync(runtime, { mode: 0o755 });
    const tokenFile = join(work, "token");
    writeFileSync(tokenFile, "gtk-git-suite-token-not-secret\n", { mode: 0o600 });
    keeper = await KeeperProcess.start({
      dir: work,
      stateDir: join(runtime, "git-token-keeper"),
      config: { stateDir: join(runtime, "git-token-keeper"), stateGroup: gid, providers: [{ name: "unused-origin", type: "file", gitUrl: SERVED_ORIGIN, path: tokenFile }] },
    });
    writeFileSync(join(tDir, PROBE), readFileSync(join(import.meta.dirname, PROBE)));
    chownSync(join(tDir, PROBE), uid, gid);

    const scripts = readdirSync(tDir)
      .filter((n) => SCRIPTS.test(n))
      .sort();
    expect(scripts.length).toBeGreaterThan(100);
    const envFor = (mode: "plain" | "shim"): Record<string, string> => {
      const out = join(work, `out-${mode}`);
      mkdirSync(out, { mode: 0o755 });
      chownSync(out, uid, gid);
      return {
        PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        LANG: "C",
        GIT_TEST_INSTALLED: mode === "plain" ? "/usr/bin" : shim,
        GIT_TEST_HTTPD: "true",
        GIT_TEST_GIT_DAEMON: "true",
        TEST_OUTPUT_DIRECTORY: out,
        GTK_TRASH_ROOT: out,
        XDG_RUNTIME_DIR: runtime,
        GTK_SERVED_ORIGIN: SERVED_ORIGIN,
      };
    };
    const plainRun: Run = { env: envFor("plain"), portBase: 0, results: new Map() };
    const shimRun: Run = { env: envFor("shim"), portBase: 20_000, results: new Map() };
    await runAll(tDir, [PROBE], [shimRun]);
    await runAll(tDir, scripts, [plainRun, shimRun]);
    const plain = plainRun.results;
    const viaShim = shimRun.results;

    const probe = viaShim.get(PROBE) as ScriptResult;
    expect([...probe.tests.values()], probe.output).toEqual(["ok", "ok"]);

    const regressions: string[] = [];
    const failingPlain: string[] = [];
    let passedBoth = 0;
    for (const script of scripts) {
      const p = plain.get(script) as ScriptResult;
      const s = viaShim.get(script) as ScriptResult;
      for (const [n, status] of p.tests) {
        const name = `${script} #${n} ${p.names.get(n) ?? ""}`;
        if (status === "not ok") failingPlain.push(name);
        if (status !== "ok") continue;
        if (s.tests.get(n) === "ok") passedBoth++;
        else regressions.push(`${name}: ${s.tests.get(n) ?? "not run"} through the shim`);
      }
      if (p.exitCode === 0 && s.exitCode !== 0) regressions.push(`${script}: exit ${s.exitCode} through the shim (plain: 0)`);
    }
    const report = [
      `git's test suite (${scripts.length} scripts): ${passedBoth} tests pass with plain git and through the shim`,
      `failing with plain git too (${failingPlain.length}):`,
      ...failingPlain.map((f) => `  ${f}`),
      `failing only through the shim (${regressions.length}):`,
      ...regressions.map((r) => `  ${r}`),
    ].join("\n");
    mkdirSync(RESULTS_DIR, { recursive: true });
    writeFileSync(join(RESULTS_DIR, "git-suite.txt"), `${report}\n`);
    process.stderr.write(`${report}\n`);
    const outputs = regressions
      .map((r) => r.split(" ")[0] as string)
      .filter((v, i, a) => a.indexOf(v) === i)
      .slice(0, 3)
      .map((script) => `--- ${script} through the shim:\n${(viaShim.get(script) as ScriptResult).output.slice(-3000)}`);
    expect(regressions, `${report}\n${outputs.join("\n")}`).toEqual([]);
    expect(passedBoth).toBeGreaterThan(1000);
  }, 80 * 60_000);
});
