import { appendFileSync, chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import { runCli } from "../support/run-cli.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

/**
 * A git the shim never sees (Jenkins' git tool set to /usr/bin/git, a tool that resolved git at
 * install time) gets fresh tokens once `install --gitconfig` has put the keeper's helper in git's
 * global config, keyed on what the keeper serves.
 */
describe("helper-only mode: install --gitconfig", () => {
  let world: World;
  let home: string;
  let stale: string;

  beforeAll(async () => {
    world = await World.create();
    await world.startKeeper();
    home = tempDir();
    stale = world.github.issueToken("acme");
    world.github.tokens.get(stale)!.revoked = true;
    // A credential store configured before, holding an expired token for the host.
    writeFileSync(join(home, ".git-credentials"), `${world.gitUrl.replace("http://", `http://x-access-token:${stale}@`)}\n`, { mode: 0o600 });
    await must(world.git(["config", "--global", "credential.helper", "store"], home, { shim: false, env: { HOME: home } }));
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  it("plain git, no shim on PATH: fails before, clones and pushes after; the store never gets the keeper's token", async () => {
    const env = { HOME: home };
    const work = tempDir();
    expect((await world.git(["clone", "-q", world.repoUrl("acme/app"), join(work, "before")], work, { shim: false, env })).exitCode).toBe(128);
    const dry = await runCli(["install", "--gitconfig", "--dry-run"], { GIT_TOKEN_KEEPER_DIR: world.stateDir, HOME: home });
    expect(dry.stdout).toContain("would set credential.");
    const r = await runCli(["install", "--gitconfig"], { GIT_TOKEN_KEEPER_DIR: world.stateDir, HOME: home });
    expect(r.exitCode, r.stderr).toBe(0);
    // Idempotent: a second run leaves one reset and one helper per prefix.
    await runCli(["install", "--gitconfig"], { GIT_TOKEN_KEEPER_DIR: world.stateDir, HOME: home });
    const helpers = (await must(world.git(["config", "--global", "--get-all", `credential.${world.gitUrl}/acme/.helper`], home, { shim: false, env }))).stdout.split("\n");
    expect(helpers).toHaveLength(2);
    const app = join(work, "app");
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work, { shim: false, env }));
    writeFileSync(join(app, "helper-only.txt"), "x\n");
    await must(world.git(["add", "helper-only.txt"], app, { shim: false, env }));
    await must(world.git(["commit", "-q", "-m", "helper-only"], app, { shim: false, env }));
    await must(world.git(["push", "-q", "origin", "HEAD:refs/heads/helper-only"], app, { shim: false, env }));
    // (The failed clone before made git erase the stale entry.) No token of the keeper's is stored.
    const stored = readFileSync(join(home, ".git-credentials"), "utf8");
    for (const token of world.github.tokens.keys()) if (token !== stale) expect(stored).not.toContain(token);
  });

  it("without a daemon's routes it says what to do", async () => {
    const r = await runCli(["install", "--gitconfig"], { GIT_TOKEN_KEEPER_DIR: tempDir(), HOME: tempDir() });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("start the daemon first");
  });

  it("store and cache configured before and after the keeper's helper never keep its tokens on git 2.46+ (ephemeral); on older git doctor warns", async () => {
    const home2 = tempDir();
    const sockets = join(home2, "cache");
    mkdirSync(sockets, { mode: 0o700 });
    chmodSync(sockets, 0o700);
    const socket = join(sockets, "socket");
    const env = { HOME: home2 };
    const cache = `cache --timeout=300 --socket ${socket}`;
    // Before: what Tekton's creds-init and a developer's set-up write; then the keeper's entries;
    // then the same two again, in a section of their own at the end of the file.
    await must(world.git(["config", "--global", "--add", "credential.helper", "store"], home2, { shim: false, env }));
    await must(world.git(["config", "--global", "--add", "credential.helper", cache], home2, { shim: false, env }));
    expect((await runCli(["install", "--gitconfig"], { GIT_TOKEN_KEEPER_DIR: world.stateDir, HOME: home2 })).exitCode).toBe(0);
    appendFileSync(join(home2, ".gitconfig"), `[credential]\n\thelper = store\n\thelper = ${cache}\n`);
    try {
      const work = tempDir();
      const app = join(work, "app");
      await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work, { shim: false, env }));
      writeFileSync(join(app, "ephemeral.txt"), "x\n");
      await must(world.git(["add", "ephemeral.txt"], app, { shim: false, env }));
      await must(world.git(["commit", "-q", "-m", "ephemeral"], app, { shim: false, env }));
      await must(world.git(["push", "-q", "origin", "HEAD:refs/heads/ephemeral"], app, { shim: false, env }));
      const keeperTokens = [...world.github.tokens.keys()].filter((t) => t !== stale);
      let stored = "";
      try {
        stored = readFileSync(join(home2, ".git-credentials"), "utf8");
      } catch {
        // Nothing stored.
      }
      const host = new URL(world.gitUrl).host;
      const cached = [];
      for (const query of [`protocol=http\nhost=${host}\npath=acme/app.git\n`, `capability[]=authtype\nprotocol=http\nhost=${host}\npath=acme/app.git\n`, `protocol=http\nhost=${host}\n`]) {
        const r = await execa("git", ["credential-cache", `--socket=${socket}`, "get"], { input: `${query}\n`, reject: false, env: { ...process.env, HOME: home2 } });
        cached.push(String(r.stdout));
      }
      const kept = (text: string) => keeperTokens.filter((t) => text.includes(t) || text.includes(Buffer.from(`x-access-token:${t}`).toString("base64")));
      const version = String((await execa("git", ["--version"])).stdout);
      const m = /(\d+)\.(\d+)/.exec(version)!;
      const ephemeral = Number(m[1]) > 2 || Number(m[2]) >= 46;
      const doctor = await runCli(["doctor"], { GIT_TOKEN_KEEPER_DIR: world.stateDir, HOME: home2, GIT_CONFIG_NOSYSTEM: "1" }, app);
      if (ephemeral) {
        expect(kept(stored), `${version}: ~/.git-credentials`).toEqual([]);
        expect(kept(cached.join("\n")), `${version}: the cache daemon`).toEqual([]);
        expect(doctor.stdout).not.toContain("comes after the keeper's helper");
      } else {
        // What docs/how-it-works.md says remains on git before 2.46: the helpers after the
        // keeper's get its token and keep it; doctor names each of them.
        expect(kept(stored).length, `${version}: ~/.git-credentials`).toBeGreaterThan(0);
        expect(doctor.stdout).toMatch(/warn {2}credential\.helper=store comes after the keeper's helper/);
        expect(doctor.stdout).toContain(`credential.helper=${cache} comes after the keeper's helper`);
      }
      expect(doctor.stdout).toMatch(/warn {2}mode: helper-only/);
      // Advice for the mode it found: one word per helper, and nothing about a shim that is not there.
      expect(doctor.stdout.split("\n").filter((l) => /^(warn|FAIL|ok) +credential\.helper=store /.test(l))).toHaveLength(1);
      expect(doctor.stdout).not.toMatch(/the shim (overrides|resets|skips)/);
    } finally {
      await execa("git", ["credential-cache", `--socket=${socket}`, "exit"], { reject: false, env: { ...process.env, HOME: home2 } });
      // The suite's secrets audit would rightly flag what an old git left in the store.
      rmSync(join(home2, ".git-credentials"), { force: true });
    }
  });

  // Install is undone exactly: a rerun after the served owners changed removes what it wrote for
  // the owner no longer served (its empty-helper reset would otherwise keep blocking the build's
  // own store there), and --remove takes out everything it wrote and nothing else.
  it("a rerun after an owner is no longer served removes its entries; --remove removes exactly what install wrote", async () => {
    const home3 = tempDir();
    const env = { HOME: home3 };
    const cfg = (args: string[]) => world.git(["config", "--global", ...args], home3, { shim: false, env });
    await must(cfg(["user.name", "Someone"]));
    await must(cfg(["credential.helper", "store"]));
    const keeper = { GIT_TOKEN_KEEPER_DIR: world.stateDir, HOME: home3 };
    expect((await runCli(["install", "--gitconfig"], keeper)).exitCode).toBe(0);
    const globex = `credential.${world.gitUrl}/globex/.helper`;
    expect((await cfg(["--get-all", globex])).exitCode).toBe(0);
    // The keeper now serves acme alone: its routes say so.
    const narrowed = tempDir();
    writeFileSync(join(narrowed, "routes"), readFileSync(join(world.stateDir, "routes"), "utf8").replace(/acme,globex|globex,acme/, "acme"));
    const rerun = await runCli(["install", "--gitconfig"], { GIT_TOKEN_KEEPER_DIR: narrowed, HOME: home3 });
    expect(rerun.exitCode, rerun.stderr).toBe(0);
    expect(rerun.stdout).toContain(`removed ${globex}`);
    expect((await cfg(["--get-all", globex])).exitCode).toBe(1);
    expect((await cfg(["--get-all", `credential.${world.gitUrl}/acme/.helper`])).exitCode).toBe(0);
    const removed = await runCli(["install", "--gitconfig", "--remove"], keeper);
    expect(removed.exitCode, removed.stderr).toBe(0);
    const left = readFileSync(join(home3, ".gitconfig"), "utf8");
    expect(left).not.toMatch(/token-keeper|gittokenkeeper|useHttpPath/i);
    expect((await cfg(["--get", "user.name"])).stdout).toBe("Someone");
    expect((await cfg(["--get-all", "credential.helper"])).stdout).toBe("store");
  });

  it("entries for every owner, however many: never one host-wide entry in their place", async () => {
    const state = tempDir();
    const owners = Array.from({ length: 40 }, (_, i) => `owner${i}`);
    writeFileSync(join(state, "routes"), `${world.gitUrl} test-app / owner ${owners.join(",")}\n`);
    const home4 = tempDir();
    expect((await runCli(["install", "--gitconfig"], { GIT_TOKEN_KEEPER_DIR: state, HOME: home4 })).exitCode).toBe(0);
    const keys = (await must(world.git(["config", "--global", "--name-only", "--get-regexp", "^credential\\..*\\.helper$"], home4, { shim: false, env: { HOME: home4 } }))).stdout.split("\n");
    expect(new Set(keys).size).toBe(40);
    expect(keys).not.toContain(`credential.${world.gitUrl}/.helper`);
  });
});
