import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { haveTool } from "../support/require-tool.ts";
import { runCli } from "../support/run-cli.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";

afterAll(removeTempDirs);

describe("install --runner", () => {
  const env = (prefix: string) => ({ HOME: prefix, XDG_RUNTIME_DIR: "/run/user/1001", PATH: "/usr/local/bin:/usr/bin:/bin", USER: "runner" });

  it("github: shim, user unit, the runner's .path and .env; a second run changes nothing; --dry-run writes nothing", async () => {
    const prefix = tempDir();
    const runnerDir = join(prefix, "actions-runner");
    mkdirSync(runnerDir);
    writeFileSync(join(runnerDir, "config.sh"), "");
    writeFileSync(join(runnerDir, ".env"), "LANG=C.UTF-8\n");
    writeFileSync(join(runnerDir, ".path"), "/usr/bin:/bin\n");

    const dry = await runCli(["install", "--runner", "github", "--dry-run"], env(prefix));
    expect(dry.exitCode).toBe(0);
    expect(dry.stdout).toContain(`would create  ${prefix}/.local/share/git-token-keeper/shim/`);
    expect(existsSync(join(prefix, ".local"))).toBe(false);
    expect(readFileSync(join(runnerDir, ".env"), "utf8")).toBe("LANG=C.UTF-8\n");

    const first = await runCli(["install", "--runner", "github"], env(prefix));
    expect(first.exitCode).toBe(0);
    const shim = join(prefix, ".local/share/git-token-keeper/shim");
    expect(statSync(join(shim, "git")).mode & 0o111).not.toBe(0);
    expect(statSync(join(shim, "git-credential-token-keeper")).mode & 0o111).not.toBe(0);
    expect(readFileSync(join(runnerDir, ".path"), "utf8")).toBe(`${shim}:/usr/bin:/bin\n`);
    expect(readFileSync(join(runnerDir, ".env"), "utf8")).toBe("LANG=C.UTF-8\nGIT_TOKEN_KEEPER_DIR=/run/user/1001/git-token-keeper\n");
    const unit = join(prefix, ".config/systemd/user/git-token-keeper.service");
    expect(readFileSync(unit, "utf8")).toMatch(/^ExecStart=\S+node \S+\/cli\/main\.js run/m);
    expect(first.stdout).toContain("systemctl --user enable --now git-token-keeper");

    const second = await runCli(["install", "--runner", "github"], env(prefix));
    expect(second.stdout.split("\n").filter((l) => /^(created|updated)/.test(l))).toEqual([]);
  });

  it.skipIf(!haveTool("systemd-analyze"))("the user unit it writes passes systemd-analyze verify", async () => {
    const prefix = tempDir();
    const runtime = join(prefix, "runtime");
    mkdirSync(runtime, { mode: 0o700 });
    await runCli(["install", "--runner", "jenkins"], { ...env(prefix), XDG_RUNTIME_DIR: runtime });
    const r = spawnSync("systemd-analyze", ["--user", "verify", join(prefix, ".config/systemd/user/git-token-keeper.service")], {
      env: { ...process.env, XDG_RUNTIME_DIR: runtime },
      encoding: "utf8",
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("gitlab and jenkins: print the settings that live in the runner's or the controller's own config", async () => {
    const gitlab = await runCli(["install", "--runner", "gitlab"], env(tempDir()));
    expect(gitlab.stdout).toMatch(/pre_get_sources_script = "export PATH=\S+shim:\$PATH GIT_TOKEN_KEEPER_DIR=\/run\/user\/1001\/git-token-keeper"/);
    const jenkins = await runCli(["install", "--runner", "jenkins"], env(tempDir()));
    expect(jenkins.stdout).toMatch(/PATH\+GIT_TOKEN_KEEPER = \S+shim/);
  });

  it("says what is wrong: an unknown runner, a missing runner folder", async () => {
    const bad = await runCli(["install", "--runner", "circle"], env(tempDir()));
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain("--runner must be one of github, gitlab, jenkins, got 'circle'");
    const none = await runCli(["install", "--runner", "github"], env(tempDir()));
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toContain("pass --runner-dir");
  });
});
