import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatTokenRecord } from "../../src/store/token-file.ts";
import { shellsToTest, shimCopyFor } from "../support/shells.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { fakeGhToken } from "../support/fake-secrets.ts";

const TOKEN = fakeGhToken("passthroughTOKEN".repeat(2));
// A stand-in for git that reports exactly what it was given.
const FAKE_GIT = `#!/bin/sh
if [ -n "$FAKE_GIT_ARGS" ]; then for a do printf '%s\\0' "$a"; done >"$FAKE_GIT_ARGS"; fi
if [ -n "$FAKE_GIT_ENV" ]; then env >"$FAKE_GIT_ENV"; fi
if [ -n "$FAKE_GIT_STDIN" ]; then cat >"$FAKE_GIT_STDIN"; fi
if [ -n "$FAKE_GIT_SLEEP" ]; then sleep "$FAKE_GIT_SLEEP"; fi
exit "\${FAKE_GIT_EXIT:-0}"
`;

afterAll(removeTempDirs);

for (const shell of shellsToTest()) {
  describe(`shim under ${shell}`, () => {
    let shim: string;
    let dir: string;
    let state: string;
    let fakeGit: string;

    beforeAll(() => {
      shim = shimCopyFor(shell);
      dir = tempDir();
      state = join(dir, "state");
      mkdirSync(join(state, "tokens", "gh"), { recursive: true, mode: 0o700 });
      writeFileSync(join(state, "routes"), "https://github.com gh / owner acme\n");
      writeFileSync(join(state, "origins"), "https://github.com - /acme/\n");
      writeFileSync(join(state, "daemon.pid"), `${process.pid}\n`);
      const t = Math.floor(Date.now() / 1000);
      writeFileSync(join(state, "tokens", "gh", "acme"), formatTokenRecord({ token: TOKEN, username: "x-access-token", expires: t + 3600, refreshAt: t + 3000, mintedAt: t, serial: 1 }));
      mkdirSync(join(dir, "bin"));
      fakeGit = join(dir, "bin", "git");
      writeFileSync(fakeGit, FAKE_GIT);
      chmodSync(fakeGit, 0o755);
    });

    const run = (args: string[], env: Record<string, string> = {}, input = "") =>
      execa(join(shim, "git"), args, {
        env: { PATH: `${shim}:${join(dir, "bin")}:${process.env.PATH}`, GIT_TOKEN_KEEPER_DIR: state, ...env },
        extendEnv: false,
        reject: false,
        input,
        stripFinalNewline: false,
      });

    const WEIRD = ["a b", "'quoted'", '"dq"', "*", "$HOME", "line\nbreak", "", "-", "--", "-x", "tab\there", "back\\slash", "ünïcødé"];

    for (const sub of ["rev-parse", "fetch"]) {
      it(`passes every argument of \`${sub}\` through byte for byte and returns git's exit code`, async () => {
        const out = join(dir, `args-${sub}`);
        const env = join(dir, `env-${sub}`);
        const r = await run(["-C", dir, "-c", "x.y=it's", sub, ...WEIRD], { FAKE_GIT_ARGS: out, FAKE_GIT_ENV: env, FAKE_GIT_EXIT: "42" });
        expect(r.exitCode).toBe(42);
        const { readFileSync } = await import("node:fs");
        const got = readFileSync(out, "utf8").split("\0").slice(0, -1);
        if (sub === "rev-parse") {
          expect(got).toEqual(["-C", dir, "-c", "x.y=it's", sub, ...WEIRD]);
        } else {
          // A network command's -c reaches git as git itself passes -c on: first in
          // GIT_CONFIG_PARAMETERS, with the keeper's entries after it.
          expect(got).toEqual(["-C", dir, sub, ...WEIRD]);
          expect(readFileSync(env, "utf8")).toMatch(/^GIT_CONFIG_PARAMETERS='x\.y'='it'\\''s' 'credential\.https:\/\/github\.com\/acme\/\.helper'=''/m);
        }
      });

      it(`keeps stdin for \`${sub}\``, async () => {
        const out = join(dir, `stdin-${sub}`);
        await run([sub], { FAKE_GIT_STDIN: out }, "from stdin\n");
        const { readFileSync } = await import("node:fs");
        expect(readFileSync(out, "utf8")).toBe("from stdin\n");
      });
    }

    it("a --config-env whose variable name is no shell identifier (the Azure Pipelines agent's): git gets its value, local and network commands", async () => {
      const { readFileSync } = await import("node:fs");
      const out = join(dir, "cfgenv-args");
      const env = join(dir, "cfgenv-env");
      const r = await run(["--config-env=http.extraheader=env_var_http.extraheader", "rev-parse"], { "env_var_http.extraheader": "X-From: env", FAKE_GIT_ARGS: out, FAKE_GIT_ENV: env });
      expect(r.exitCode).toBe(0);
      const [arg] = readFileSync(out, "utf8").split("\0");
      const name = /^--config-env=http\.extraheader=(\w+)$/.exec(arg ?? "")?.[1];
      expect(name, arg).toBeDefined();
      expect(readFileSync(env, "utf8")).toContain(`${name}=X-From: env\n`);
      await run(["--config-env", "http.extraheader=env_var_http.extraheader", "fetch"], { "env_var_http.extraheader": "X-From: env", FAKE_GIT_ARGS: out, FAKE_GIT_ENV: env });
      expect(readFileSync(out, "utf8").split("\0").slice(0, -1)).toEqual(["fetch"]);
      expect(readFileSync(env, "utf8")).toMatch(/^GIT_CONFIG_PARAMETERS='http\.extraheader'='X-From: env' /m);
    });

    it("appends its helper after config entries the caller set, and puts no token in the environment", async () => {
      const out = join(dir, "env");
      await run(["fetch"], { FAKE_GIT_ENV: out, GIT_CONFIG_COUNT: "1", GIT_CONFIG_KEY_0: "user.name", GIT_CONFIG_VALUE_0: "Caller" });
      const { readFileSync } = await import("node:fs");
      const env = readFileSync(out, "utf8");
      expect(env).toContain("GIT_CONFIG_KEY_0=user.name\n");
      expect(env).toContain("GIT_CONFIG_VALUE_0=Caller\n");
      // Keyed on what the keeper serves (owner acme), never the whole host.
      expect(env).toContain("GIT_CONFIG_KEY_1=credential.https://github.com/acme/.helper\n");
      expect(env).toMatch(/GIT_CONFIG_VALUE_2=.*git-credential-token-keeper/);
      expect(env).toContain("GIT_CONFIG_KEY_3=credential.https://github.com/acme/.useHttpPath\n");
      // The caller's prompt setting is the caller's: nothing is changed for hosts not served.
      expect(env).not.toContain("GIT_TERMINAL_PROMPT");
      expect(env).not.toContain(TOKEN);
    });

    it("passes straight through with GIT_TOKEN_KEEPER_DISABLE=1", async () => {
      const out = join(dir, "env-disabled");
      await run(["fetch"], { FAKE_GIT_ENV: out, GIT_TOKEN_KEEPER_DISABLE: "1" });
      const { readFileSync } = await import("node:fs");
      expect(readFileSync(out, "utf8")).not.toContain("GIT_CONFIG_COUNT");
    });

    it("uses GIT_TOKEN_KEEPER_REAL_GIT, and never itself even when PATH holds it twice", async () => {
      const out = join(dir, "args-real");
      const r = await run(["status"], { FAKE_GIT_ARGS: out, GIT_TOKEN_KEEPER_REAL_GIT: fakeGit, PATH: `${shim}:${shim}:/usr/bin:/bin` });
      expect(r.exitCode).toBe(0);
      const twice = await execa(join(shim, "git"), ["--version"], { env: { PATH: `${shim}:${shim}:/usr/bin:/bin` }, extendEnv: false, reject: false });
      expect(twice.stdout).toMatch(/^git version /);
      const self = await execa(join(shim, "git"), ["--version"], {
        env: { PATH: `${shim}:/usr/bin:/bin`, GIT_TOKEN_KEEPER_REAL_GIT: join(shim, "git") },
        extendEnv: false,
        reject: false,
      });
      expect(self.stdout).toMatch(/^git version /);
      expect(self.stderr).toContain("GIT_TOKEN_KEEPER_REAL_GIT points at the shim itself");
    });

    it("a symlink elsewhere on PATH leading back to the shim: one hop on to the real git, no loop", async () => {
      const links = join(tempDir(), "links");
      mkdirSync(links);
      symlinkSync(join(shim, "git"), join(links, "git"));
      const cwd = tempDir();
      const plain = await execa("/usr/bin/git", ["status"], { cwd, env: { PATH: "/usr/bin:/bin" }, extendEnv: false, reject: false });
      const r = await execa(join(shim, "git"), ["status"], { cwd, env: { PATH: `${shim}:${links}:/usr/bin:/bin` }, extendEnv: false, reject: false, timeout: 10_000 });
      expect(r.exitCode).toBe(plain.exitCode);
      expect(r.stderr).toBe(plain.stderr);
    });

    it("works when installed as a symlink named git on PATH", async () => {
      const links = join(tempDir(), "bin");
      mkdirSync(links);
      symlinkSync(join(shim, "git"), join(links, "git"));
      const out = join(dir, "env-symlink");
      // (status would be exec'd without the keeper's entries: it reads no object a fetch brings.)
      const r = await execa("git", ["branch"], {
        env: { PATH: `${links}:${join(dir, "bin")}:/usr/bin:/bin`, GIT_TOKEN_KEEPER_DIR: state, FAKE_GIT_ENV: out },
        extendEnv: false,
        reject: false,
      });
      expect(r.exitCode).toBe(0);
      const { readFileSync } = await import("node:fs");
      expect(readFileSync(out, "utf8")).toMatch(new RegExp(`GIT_CONFIG_VALUE_1=${shim}/git-credential-token-keeper`));
    });

    it("forwards Ctrl-C on a network command: git stops and the shim exits 130", async () => {
      const child = spawn(join(shim, "git"), ["fetch"], {
        env: { PATH: `${shim}:${join(dir, "bin")}:${process.env.PATH}`, GIT_TOKEN_KEEPER_DIR: state, FAKE_GIT_SLEEP: "30" },
        detached: true,
        stdio: "ignore",
      });
      await new Promise((r) => setTimeout(r, 500));
      const started = Date.now();
      process.kill(-child.pid!, "SIGINT");
      const code = await new Promise<number | null>((resolve) => child.on("exit", (c, signal) => resolve(c ?? (signal === "SIGINT" ? 130 : -1))));
      expect(code).toBe(130);
      expect(Date.now() - started).toBeLessThan(5_000);
    });
  });
}
