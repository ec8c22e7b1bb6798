import { chmodSync, mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toolPath } from "../support/require-tool.ts";
import { runCli } from "../support/run-cli.ts";
import { SHIM_DIR } from "../support/run-git.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

describe("doctor", () => {
  let world: World;
  let configFile: string;
  let home: string;

  beforeAll(async () => {
    world = await World.create();
    await world.startKeeper();
    configFile = join(world.dir, "keeper.yaml");
    home = tempDir();
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  const doctor = (args: string[] = [], env: Record<string, string> = {}, cwd?: string) =>
    runCli(["doctor", "--config", configFile, ...args], {
      PATH: `${SHIM_DIR}:${process.env.PATH}`,
      HOME: home,
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_TOKEN_KEEPER_DIR: world.stateDir,
      ...env,
    }, cwd);
  const line = (out: string, level: string, text: string) => out.split("\n").some((l) => l.startsWith(level) && l.includes(text));

  it("passes a healthy install, including an ls-remote through the shim", async () => {
    const r = await doctor(["--repo", world.repoUrl("acme/app")]);
    expect(r.stdout).not.toContain("FAIL");
    expect(r.exitCode).toBe(0);
    expect(line(r.stdout, "ok", "the first git on PATH is the shim")).toBe(true);
    expect(line(r.stdout, "ok", "mode: the shim for git on PATH (overrides, retries); git run by absolute path gets no token")).toBe(true);
    expect(line(r.stdout, "ok", "works through the shim")).toBe(true);
    expect(line(r.stdout, "ok", "daemon alive")).toBe(true);
    expect(line(r.stdout, "ok", "clock ")).toBe(true);
  });

  it("fails when the shim is not first on PATH", async () => {
    const r = await doctor([], { PATH: `${process.env.PATH}:${SHIM_DIR}` });
    expect(r.exitCode).toBe(1);
    expect(line(r.stdout, "FAIL", `the first git on PATH is ${toolPath("git")}, not the shim`)).toBe(true);
    expect(line(r.stdout, "FAIL", "mode: none")).toBe(true);
    expect(r.stdout).toContain(`fix: export PATH="${SHIM_DIR}:$PATH"`);
  });

  it.each([
    ["2.30.2", "FAIL", "needs git 2.31 or newer"],
    ["2.32.0", "warn", "submodule commands drop the shim's settings before git 2.33"],
  ])("judges git %s: %s", async (version, level, text) => {
    const fake = join(tempDir(), "git");
    writeFileSync(fake, `#!/bin/sh\necho "git version ${version}"\n`);
    chmodSync(fake, 0o755);
    const r = await doctor([], { GIT_TOKEN_KEEPER_REAL_GIT: fake });
    expect(line(r.stdout, level, text)).toBe(true);
  });

  it("fails on a state dir open to others and warns when it is not on tmpfs", async () => {
    const state = join(tempDir(), "state");
    mkdirSync(state, { mode: 0o755 });
    chmodSync(state, 0o755);
    const r = await doctor([], { GIT_TOKEN_KEEPER_DIR: state });
    expect(line(r.stdout, "FAIL", "is open to others (mode 755)")).toBe(true);
    const onTmpfs = statfsSync(state).type === 0x01021994;
    expect(line(r.stdout, onTmpfs ? "ok" : "warn", onTmpfs ? "state dir is on tmpfs" : "state dir is not on tmpfs")).toBe(true);
    const shm = mkdtempSync("/dev/shm/gtk-doctor-");
    try {
      chmodSync(shm, 0o700);
      expect(line((await doctor([], { GIT_TOKEN_KEEPER_DIR: shm })).stdout, "ok", "state dir is on tmpfs")).toBe(true);
    } finally {
      rmSync(shm, { recursive: true });
    }
    expect(line(r.stdout, "FAIL", "no daemon has run with state dir")).toBe(true);
  });

  it("fails when the clock is off against the API's Date header", async () => {
    world.github.clockOffsetMs = 120_000;
    try {
      const r = await doctor();
      expect(r.exitCode).toBe(1);
      expect(r.stdout).toMatch(/FAIL +clock behind http:\/\/127\.0\.0\.1:\d+ by 1[12]\d\.\d s/);
    } finally {
      world.github.clockOffsetMs = 0;
    }
  });

  it("fails when a provider cannot mint, and when ls-remote fails", async () => {
    world.github.setMode("reset");
    try {
      await runCli(["refresh"], { GIT_TOKEN_KEEPER_DIR: world.stateDir });
      const r = await doctor(["--repo", world.repoUrl("initech/app")]);
      expect(line(r.stdout, "FAIL", "provider test-app cannot mint for acme: minting a token for 'acme'")).toBe(true);
      expect(line(r.stdout, "FAIL", "failed through the shim")).toBe(true);
    } finally {
      world.github.setMode("up");
      await runCli(["refresh"], { GIT_TOKEN_KEEPER_DIR: world.stateDir });
    }
  });

  it("warns about stale credentials the shim will override", async () => {
    const repo = join(tempDir(), "repo");
    await must(world.git(["init", "-q", repo], home, { shim: false }));
    const git = (args: string[]) => must(world.git(args, repo, { shim: false }));
    await git(["remote", "add", "origin", world.repoUrl("acme/app").replace("http://", "http://x-access-token:ghs_stale@")]);
    await git(["config", `http.${world.gitUrl}/.extraheader`, "AUTHORIZATION: basic eDpzdGFsZQ=="]);
    await git(["config", "credential.helper", "store"]);
    await git(["config", `url.${world.gitUrl.replace("http://", "http://oauth2:ghs_rewrite@")}/.insteadOf`, `${world.gitUrl}/`]);
    await git(["config", `url.${world.gitUrl.replace("http://", "http://ghs_pushtoken@")}/.pushInsteadOf`, `${world.gitUrl}/`]);
    mkdirSync(join(repo, ".git", "modules", "lib"), { recursive: true });
    writeFileSync(join(repo, ".git", "modules", "lib", "config"), `[remote "origin"]\n\turl = ${world.repoUrl("acme/lib").replace("http://", "http://x:ghs_submodule@")}\n`);
    writeFileSync(join(home, ".git-credentials"), `${world.gitUrl.replace("http://", "http://x:ghs_old@")}\n`);
    const r = await doctor([], {}, repo);
    expect(line(r.stdout, "warn", ".insteadOf rewrites")).toBe(true);
    expect(line(r.stdout, "warn", ".pushInsteadOf rewrites")).toBe(true);
    expect(line(r.stdout, "warn", "has a URL with a token (x:***@")).toBe(true);
    for (const secret of ["ghs_rewrite", "ghs_pushtoken", "ghs_submodule"]) expect(r.stdout).not.toContain(secret);
    expect(line(r.stdout, "warn", "remote.origin.url holds a password (x-access-token:***@")).toBe(true);
    expect(r.stdout).not.toContain("ghs_stale");
    expect(line(r.stdout, "warn", ".extraheader sends an Authorization header")).toBe(true);
    expect(line(r.stdout, "warn", "credential.helper=store keeps old tokens")).toBe(true);
    expect(line(r.stdout, "warn", ".git-credentials holds a credential for")).toBe(true);
  });

  it("warns about a plain http.extraheader (no URL in the key) with an Authorization", async () => {
    const repo = join(tempDir(), "repo");
    await must(world.git(["init", "-q", repo], home, { shim: false }));
    await must(world.git(["config", "http.extraheader", "AUTHORIZATION: basic eDpzdGFsZQ=="], repo, { shim: false }));
    const r = await doctor([], {}, repo);
    expect(line(r.stdout, "warn", "http.extraheader sends an Authorization header")).toBe(true);
    expect(r.stdout).not.toContain("eDpzdGFsZQ");
  });

  it("fails when the daemon is down", async () => {
    await world.keeper!.stop();
    const r = await doctor();
    expect(line(r.stdout, "FAIL", "is not running")).toBe(true);
    await world.startKeeper();
  });
});
