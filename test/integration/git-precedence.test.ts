import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";

/**
 * The rules of git's config precedence the shim relies on (docs/how-it-works.md, "What the shim
 * relies on in git"), each checked against the git on this machine; the newest-git test runs this
 * file on Debian trixie's git too. No server: git answers from its config alone.
 */
describe("git's config precedence, as the shim relies on it", () => {
  let dir: string;
  let repo: string;
  let home: string;
  const url = "https://git.example/acme/app.git";

  beforeAll(async () => {
    dir = tempDir();
    home = join(dir, "home");
    repo = join(dir, "repo");
    mkdirSync(home);
    await execa("git", ["init", "-q", repo], { env: { HOME: home } });
    await git(["remote", "add", "origin", url]);
  });

  afterAll(removeTempDirs);

  /** git in the repository, with only these config entries in the environment. */
  function git(args: string[], entries: [string, string][] = [], extra: Record<string, string> = {}) {
    return execa("git", args, { cwd: repo, env: { ...envWith(entries), ...extra }, extendEnv: false, reject: false });
  }

  const local = (key: string, value: string) => git(["config", "--add", key, value]);
  const unsetLocal = (section: string) => git(["config", "--remove-section", section]);

  it("1. entries in GIT_CONFIG_COUNT are read after every config file, GIT_CONFIG_PARAMETERS after them, -c on the command line last", async () => {
    await local("core.abbrev", "9");
    expect((await git(["config", "core.abbrev"], [["core.abbrev", "11"]])).stdout).toBe("11");
    expect((await git(["config", "core.abbrev"], [["core.abbrev", "11"]], { GIT_CONFIG_PARAMETERS: "'core.abbrev'='12'" })).stdout).toBe("12");
    expect((await git(["-c", "core.abbrev=13", "config", "core.abbrev"], [["core.abbrev", "11"]], { GIT_CONFIG_PARAMETERS: "'core.abbrev'='12'" })).stdout).toBe("13");
    // git passes -c on to what it starts in GIT_CONFIG_PARAMETERS, after what was there: the
    // shim moving a network command's -c there changes nothing for git.
    const shown = await git(["-c", "alias.params=!printf %s \"$GIT_CONFIG_PARAMETERS\"", "-c", "x.y=it's", "params"], [], { GIT_CONFIG_PARAMETERS: "'core.abbrev'='12'" });
    expect(shown.stdout).toBe("'core.abbrev'='12' 'alias.params'=''\\!'printf %s \"$GIT_CONFIG_PARAMETERS\"' 'x.y'='it'\\''s'");
    await unsetLocal("core");
  });

  it("2. url.<base>.insteadOf: the longest match wins; on a tie the rule read first, so a config file beats the environment", async () => {
    await local(`url.https://stale@git.example/acme/app.git.insteadOf`, url);
    // The environment's whole-URL rule ties with the file's and loses.
    expect((await git(["remote", "get-url", "origin"], [[`url.${url}.insteadOf`, url]])).stdout).toBe("https://stale@git.example/acme/app.git");
    // A longer rule wins wherever it was read.
    await unsetLocal(`url.https://stale@git.example/acme/app.git`);
    await local("url.https://stale@git.example/.insteadOf", "https://git.example/");
    expect((await git(["remote", "get-url", "origin"], [[`url.https://git.example/acme/.insteadOf`, "https://git.example/acme/"]])).stdout).toBe(url);
    await unsetLocal("url.https://stale@git.example/");
  });

  it("3. a rule in the file GIT_CONFIG_GLOBAL names is read before the repository's config and its includes, and a missing include is ignored", async () => {
    const included = join(dir, "runner.conf");
    writeFileSync(included, `[url "https://stale@git.example/acme/app.git"]\n\tinsteadOf = ${url}\n`);
    await local("include.path", included);
    const first = join(dir, "first.gitconfig");
    writeFileSync(first, `[url "${url}"]\n\tinsteadOf = ${url}\n[include]\n\tpath = ${join(dir, "missing")}\n`);
    expect((await git(["remote", "get-url", "origin"])).stdout).toBe("https://stale@git.example/acme/app.git");
    const r = await git(["remote", "get-url", "origin"], [], { GIT_CONFIG_GLOBAL: first });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe(url);
    await unsetLocal("include");
  });

  it("4. http.<url>.extraheader: a more specific key wins in any order; at one specificity the last read, and an empty value clears", async () => {
    const header = (entries: [string, string][], args: string[] = []) => git([...args, "config", "--get-urlmatch", "http.extraheader", url], entries);
    await local("http.https://git.example/acme/app.git.extraheader", "Authorization: stale");
    expect((await header([["http.https://git.example/.extraheader", "X-Env: 1"]])).stdout).toBe("Authorization: stale");
    expect((await header([["http.https://git.example/acme/app.git.extraheader", ""], ["http.https://git.example/acme/app.git.extraheader", "X-Keep: 1"]])).stdout).toBe("X-Keep: 1");
    // The same key on the command line comes later and wins: the shim keys its resets on URLs
    // at least as specific as the ones it finds.
    expect((await header([["http.https://git.example/acme/.extraheader", ""]], ["-c", "http.https://git.example/acme/app.git.extraheader=Authorization: cmdline"])).stdout).toBe("Authorization: cmdline");
    await unsetLocal("http.https://git.example/acme/app.git");
  });

  it("5. credential.<url>.helper keyed on a path applies to URLs under it only; its empty value drops earlier helpers for them only", async () => {
    const log = join(dir, "helpers.log");
    const helper = join(dir, "helper.sh");
    writeFileSync(helper, `#!/bin/sh\necho "$1 $2" >>'${log}'\n[ "$2" = get ] && printf 'username=u\\npassword=%s\\n' "$1"\nexit 0\n`);
    chmodSync(helper, 0o755);
    await local("credential.helper", `${helper} store`);
    const entries: [string, string][] = [
      ["credential.https://git.example/acme/.helper", ""],
      ["credential.https://git.example/acme/.helper", `${helper} keeper`],
      ["credential.https://git.example/acme/.useHttpPath", "true"],
    ];
    const filled = async (u: string) => {
      writeFileSync(log, "");
      const r = await execa("git", ["credential", "fill"], { cwd: repo, input: `url=${u}\n\n`, reject: false, extendEnv: false, env: envWith(entries) });
      return { answer: r.stdout, asked: readFileSync(log, "utf8").trim() };
    };
    expect(await filled("https://git.example/acme/app.git")).toMatchObject({ asked: "keeper get" });
    expect((await filled("https://git.example/acme/app.git")).answer).toContain("password=keeper");
    expect(await filled("https://git.example/other/tool.git")).toMatchObject({ asked: "store get" });
    await unsetLocal("credential");
  });

  it("6. includeIf.gitdir in the environment applies in that repository only", async () => {
    const file = join(dir, "repo-only.conf");
    writeFileSync(file, "[core]\n\tabbrev = 12\n");
    const entries: [string, string][] = [[`includeIf.gitdir:${repo}/.git.path`, file]];
    expect((await git(["config", "core.abbrev"], entries)).stdout).toBe("12");
    const other = join(dir, "other");
    await execa("git", ["init", "-q", other], { env: { HOME: home } });
    const r = await execa("git", ["config", "core.abbrev"], { cwd: other, reject: false, extendEnv: false, env: envWith(entries) });
    expect(r.stdout).toBe("");
  });

  function envWith(entries: [string, string][]): Record<string, string> {
    const env: Record<string, string> = { PATH: process.env.PATH ?? "", HOME: home, GIT_CONFIG_NOSYSTEM: "1", GIT_TERMINAL_PROMPT: "0", GIT_CONFIG_COUNT: String(entries.length) };
    entries.forEach(([k, v], i) => Object.assign(env, { [`GIT_CONFIG_KEY_${i}`]: k, [`GIT_CONFIG_VALUE_${i}`]: v }));
    return env;
  }
});
