import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeeperProcess } from "../support/keeper-process.ts";
import { haveTool } from "../support/require-tool.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// Short tokens, so that "its token expired" is seconds away.
const LIFETIME_MS = 8_000;
const root = process.getuid?.() === 0;

// In a pod every container has its own PID namespace: the daemon's pids mean nothing to git's
// side, and git's pids nothing to the daemon. Here the daemon runs under `unshare --pid`, where
// it is pid 1, and git in this namespace, where pid 1 is alive and is not the daemon.
describe.skipIf(!root || !haveTool("unshare", "unshare (util-linux) is not on PATH"))("daemon and git in separate PID namespaces", () => {
  let world: World;
  let app: string;

  beforeAll(async () => {
    world = await World.create({ tokenLifetimeMs: LIFETIME_MS });
    await world.startKeeper({}, { pidNamespace: true });
    const work = tempDir();
    app = join(work, "app");
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work));
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  it("the daemon's pid file names a pid of its own namespace", () => {
    // `<pid> <daemon id>`: the id is the lock's socket, which says which daemon wrote it.
    expect(readFileSync(join(world.stateDir, "daemon.pid"), "utf8").trim()).toMatch(/^1 daemon-[0-9a-f]{16}\.sock$/);
  });

  it("a fetch that hangs 3 s, then gets a 502, is retried through the shim; plain git fails", async () => {
    world.server.failNext(502, 1, /info\/refs$/, 3_000);
    const plain = await world.git(["fetch", "-q", "origin"], app, { shim: false });
    expect(plain.exitCode).toBe(128);
    expect(plain.stderr).toContain("The requested URL returned error: 502");
    world.server.failNext(502, 1, /info\/refs$/, 3_000);
    const r = await world.git(["fetch", "origin"], app);
    expect(r.stderr).toMatch(/transient error; retried after/);
    expect(r.exitCode, r.stderr).toBe(0);
  });

  it("after every token is revoked, the next fetch re-mints and succeeds; without the retry it fails", async () => {
    world.github.revokeAll();
    const once = await world.git(["fetch", "-q", "origin"], app, { env: { GIT_TOKEN_KEEPER_RETRIES: "0" } });
    expect(once.exitCode).toBe(128);
    await sleep(1_100);
    world.github.revokeAll();
    const r = await world.git(["fetch", "origin"], app);
    expect(r.stderr).toContain("refused the token; retrying with a new one");
    expect(r.exitCode, r.stderr).toBe(0);
  });

  it("hostile entries in requests/ are skipped or removed, never followed, and the daemon keeps serving", async () => {
    const requests = join(world.stateDir, "requests");
    const victim = join(tempDir(), "victim");
    writeFileSync(victim, "keep me\n");
    // Names a request could have, and others: a folder, a fifo, links, a large file, odd bytes.
    // Made beside the folder and renamed in, so that the daemon sees each one whole.
    const staging = join(world.dir, "staging");
    mkdirSync(staging);
    const place = (name: string, make: (path: string) => void) => {
      make(join(staging, name));
      renameSync(join(staging, name), join(requests, name));
    };
    place("mint+test-app+acme+0+dir", (p) => mkdirSync(p));
    place("not-a-request-dir", (p) => {
      mkdirSync(p);
      writeFileSync(join(p, "inner"), "x");
    });
    execFileSync("mkfifo", [join(requests, "mint+test-app+acme+0+fifo")]);
    execFileSync("mkfifo", [join(requests, "plain-fifo")]);
    symlinkSync(victim, join(requests, "mint+test-app+acme+0+link"));
    symlinkSync(victim, join(requests, "mint+test-app+nobody+0+link2.failed"));
    symlinkSync(victim, join(requests, "mint+test-app+nobody+0+link2"));
    place("mint+test-app+acme+0+big", (p) => writeFileSync(p, Buffer.alloc(8 << 20, 1)));
    writeFileSync(join(requests, "odd\nname \u00e9\u0001"), "");
    // Three sweeps of the folder, and chokidar's events.
    await sleep(6_500);
    expect(world.keeper?.child.exitCode).toBeNull();
    expect(readFileSync(victim, "utf8")).toBe("keep me\n");
    for (const name of ["mint+test-app+acme+0+dir", "mint+test-app+acme+0+fifo", "plain-fifo", "mint+test-app+acme+0+link", "mint+test-app+acme+0+big"]) {
      expect(existsSync(join(requests, name)), name).toBe(false);
    }
    await must(world.git(["fetch", "-q", "origin"], app));
    expect(world.keeper?.log).toContain("removed an entry in requests/ that is not a request");
  });

  it("a keeper in another PID namespace is refused while the daemon lives, and takes over at once when it is killed", async () => {
    const config = { providers: [world.providerConfig()] };
    const second = await KeeperProcess.start({ dir: tempDir(), stateDir: world.stateDir, config, waitReady: false, pidNamespace: true });
    expect(await second.exited).not.toBe(0);
    expect(second.log).toContain("another git-token-keeper daemon (pid 1 in another PID namespace)");
    await world.keeper?.kill();
    // As a pod's keeper container is restarted: its heartbeat is seconds old, its pid means
    // nothing here; the lock's socket refusing says it is gone.
    const next = await world.startKeeper({}, { pidNamespace: true });
    expect(next.child.exitCode).toBeNull();
    expect(readdirSync(world.stateDir).filter((n) => n.endsWith(".sock"))).toHaveLength(1);
    await must(world.git(["fetch", "-q", "origin"], app));
  });

  it("with the daemon killed and its token expired, git fails at once, naming git-token-keeper and saying it is not running", async () => {
    await world.keeper?.kill();
    // Its token expires, and its heartbeat grows old (30 s without a beat).
    await sleep(31_000);
    const r = await world.git(["fetch", "-q", "origin"], app);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/git-token-keeper: .*the daemon is not running/);
    expect(r.stderr).not.toContain("did not answer");
  });
});
