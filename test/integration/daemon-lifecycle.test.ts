import { mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ageHeartbeat, KeeperProcess } from "../support/keeper-process.ts";
import { runCli } from "../support/run-cli.ts";
import { SHIM_DIR } from "../support/run-git.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

describe("daemon lifecycle and CLI", () => {
  let world: World;
  let app: string;
  const cli = (args: string[]) => runCli(args, { GIT_TOKEN_KEEPER_DIR: world.stateDir });

  beforeAll(async () => {
    world = await World.create({ tokenLifetimeMs: 60_000 });
    await world.startKeeper();
    const work = tempDir();
    app = join(work, "app");
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work));
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  it("status shows each token without its value and exits 0 when healthy", async () => {
    const text = await cli(["status"]);
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toMatch(/healthy; daemon pid \d+/);
    expect(text.stdout).toMatch(new RegExp(`test-app\\s+${world.gitUrl.replace(/[.]/g, "\\.")}\\s+acme\\s+(\\d+[hms])+\\s`));
    const json = JSON.parse((await cli(["status", "--json"])).stdout);
    expect(json.alive).toBe(true);
    expect(json.tokens.map((t: { owner: string }) => t.owner).sort()).toEqual(["acme", "globex"]);
    for (const token of world.github.tokens.keys()) expect(JSON.stringify(json)).not.toContain(token);
  });

  it("refresh re-mints now; --provider narrows it and an unknown name is an error", async () => {
    const before = world.github.mintCount;
    expect((await cli(["refresh"])).exitCode).toBe(0);
    expect(world.github.mintCount - before).toBe(2);
    expect((await cli(["refresh", "--provider", "test-app"])).stdout).toContain("refreshed provider 'test-app'");
    const unknown = await cli(["refresh", "--provider", "nope"]);
    expect(unknown.exitCode).toBe(1);
    expect(unknown.stderr).toContain("no provider named 'nope'");
  });

  it("shim-path prints the folder holding git and the helper", async () => {
    const r = await cli(["shim-path"]);
    expect(r.stdout.trim()).toBe(SHIM_DIR);
    expect(statSync(join(r.stdout.trim(), "git-credential-token-keeper")).mode & 0o111).not.toBe(0);
  });

  it("keeps the state dir private and tokens out of the log and the daemon's argv and environment", async () => {
    expect(statSync(world.stateDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(world.stateDir, "tokens", "test-app", "acme")).mode & 0o777).toBe(0o600);
    const pid = world.keeper!.child.pid!;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    const environ = readFileSync(`/proc/${pid}/environ`, "utf8");
    for (const token of world.github.tokens.keys()) {
      expect(world.keeper!.log).not.toContain(token);
      expect(cmdline).not.toContain(token);
      expect(environ).not.toContain(token);
      expect(readFileSync(join(app, ".git", "config"), "utf8")).not.toContain(token);
    }
    expect(world.keeper!.log).toMatch(/"fingerprint":"sha256:[0-9a-f]{12}"/);
  });

  it("run replaces itself, same pid, with the V8 flags of an idle process; GIT_TOKEN_KEEPER_NO_REEXEC=1 keeps Node.js's defaults", async () => {
    const flags = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((a) => a.startsWith("--") && !a.startsWith("--log") && !a.startsWith("--config"));
    expect(flags(world.keeper!.child.pid!)).toEqual(["--max-semi-space-size=1", "--optimize-for-size", "--no-opt", "--no-maglev", "--no-sparkplug", "--single-threaded-gc"]);
    const other = await World.create();
    try {
      const plain = await other.startKeeper({}, { env: { GIT_TOKEN_KEEPER_NO_REEXEC: "1" } });
      expect(flags(plain.child.pid!)).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it("when the daemon is killed, git goes on with the token it left, and a restart resumes it without minting", async () => {
    await world.keeper!.kill();
    const down = await cli(["status"]);
    expect(down.exitCode).toBe(1);
    expect(down.stderr).toContain("is not running");
    // Issue 24, finding 14: the file says running and healthy; the live checks win.
    const json = await cli(["status", "--json"]);
    expect(json.exitCode).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ schema: 1, alive: false, healthy: false, state: "dead" });
    expect(JSON.parse(json.stdout).reason).toContain("is not running");
    // The helper judges by the heartbeat alone (the daemon may be in another PID namespace):
    // as 30 s after its last beat.
    ageHeartbeat(world.stateDir, 40);
    const fetch = await must(world.git(["fetch", "-q", "origin"], app));
    expect(fetch.stderr).toContain("the daemon is not running; using the token it left");
    const mints = world.github.mintCount;
    await world.startKeeper();
    expect(world.github.mintCount).toBe(mints);
    expect(world.keeper!.log).toContain("resumed token from state dir");
    await must(world.git(["fetch", "-q", "origin"], app));
  });

  it("SIGTERM ends the daemon cleanly", async () => {
    expect(await world.keeper!.stop()).toBe(0);
    expect(world.keeper!.log).toContain('"message":"daemon stopped"');
    expect((await cli(["status"])).exitCode).toBe(1);
    await world.startKeeper();
  });

  it("refuses to start a second daemon on the same state dir", async () => {
    const second = await KeeperProcess.start({ dir: tempDir(), stateDir: world.stateDir, config: { providers: [world.providerConfig()] }, waitReady: false });
    expect(await second.exited).toBe(1);
    expect(second.log).toContain("another git-token-keeper daemon");
  });

  it("refuses a state dir that is a symlink or open to others, naming the fix", async () => {
    const base = tempDir();
    mkdirSync(join(base, "real"), { mode: 0o700 });
    symlinkSync(join(base, "real"), join(base, "link"));
    const linked = await KeeperProcess.start({ dir: base, stateDir: join(base, "link"), config: { providers: [world.providerConfig()] }, waitReady: false });
    expect(await linked.exited).toBe(1);
    expect(linked.log).toContain("is a symlink; refusing it");
    mkdirSync(join(base, "open"), { mode: 0o755 });
    const open = await KeeperProcess.start({ dir: base, stateDir: join(base, "open"), config: { providers: [world.providerConfig()] }, waitReady: false });
    expect(await open.exited).toBe(1);
    expect(open.log).toContain("chmod 700");
  });

  it("bad config: one message per problem naming the key, exit code 2, nothing started", async () => {
    const dir = tempDir();
    const file = join(dir, "bad.yaml");
    writeFileSync(file, "refreshBefore: soon\nproviders:\n  - name: x\n    type: github-app\n    appId: 1\n    privateKeyFile: /nope.pem\n    colour: blue\n");
    const state = join(dir, "state");
    const r = await runCli(["run", "--config", file], { GIT_TOKEN_KEEPER_DIR: state });
    expect(r.exitCode).toBe(2);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toEqual([
      `git-token-keeper: ${file}: refreshBefore: 'soon' is not a duration; write it like 30s, 10m or 1h`,
      expect.stringContaining(`${file}: providers[0].colour: unknown key; remove it or fix its spelling`),
    ]);
    const missing = await runCli(["run", "--config", join(dir, "absent.yaml")], { GIT_TOKEN_KEEPER_DIR: state });
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain("absent.yaml: no such file; pass --config FILE or set GIT_TOKEN_KEEPER_CONFIG");
    expect(() => statSync(state)).toThrow();
  });

  it("unknown commands and options are usage errors (exit 2)", async () => {
    expect((await cli(["frobnicate"])).exitCode).toBe(2);
    expect((await cli(["status", "--provider", "x"])).stderr).toContain("'status' takes no --provider");
  });
});
