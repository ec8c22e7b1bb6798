import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FakeTokenService } from "../fakes/fake-token-service.ts";
import { exerciseProvider } from "../support/provider-scenario.ts";
import { runCli } from "../support/run-cli.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

const LIFETIME_MS = 4_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("exec, http and file providers", () => {
  let world: World;
  let service: FakeTokenService;

  beforeAll(async () => {
    world = await World.create();
    service = new FakeTokenService(world.ledger, LIFETIME_MS);
    await service.start();
  });

  afterEach(async () => {
    await world.keeper?.stop();
  });

  afterAll(async () => {
    await service.stop();
    await world.close();
    removeTempDirs();
  });

  it("exec: a command printing JSON, with no shell and a minimal environment", async () => {
    const script = `fetch(${JSON.stringify(`${service.url}/plain`)}).then((r) => r.text()).then((t) => { console.error("stderr is logged, token " + JSON.parse(t).token); console.log(t); if (process.env.SECRET_NOT_PASSED) process.exit(3); })`;
    await world.startKeeper(
      { providers: [{ name: "script", type: "exec", gitUrl: world.gitUrl, command: [process.execPath, "-e", script] }] },
      { env: { SECRET_NOT_PASSED: "1" } },
    );
    await exerciseProvider(world, { lifetimeMs: LIFETIME_MS, revoke: () => world.ledger.revokeAll() });
    const log = world.keeper!.log;
    expect(log).toContain("stderr is logged, token [redacted");
    for (const t of world.ledger.issued) expect(log).not.toContain(t);
  });

  it("exec: a failing command is a failed mint with its last stderr line", async () => {
    const keeper = await world.startKeeper({ providers: [{ name: "broken", type: "exec", gitUrl: world.gitUrl, command: "echo first >&2; echo 'vault: permission denied' >&2; exit 2", shell: true }] });
    await keeper.waitForLog(/mint failed/);
    expect(keeper.log).toContain("the token command exited with 2: vault: permission denied");
  });

  it("exec: a token in the failing command's stderr is redacted in the log, status and the helper's message", async () => {
    const leaked = `ghs_${"L".repeat(36)}`;
    const keeper = await world.startKeeper({ providers: [{ name: "leaky", type: "exec", gitUrl: world.gitUrl, command: `echo 'refused ${leaked}' >&2; exit 3`, shell: true }] });
    await keeper.waitForLog(/mint failed/);
    const status = await runCli(["status", "--json"], { GIT_TOKEN_KEEPER_DIR: world.stateDir });
    const git = await world.git(["ls-remote", world.repoUrl("acme/app")], tempDir());
    for (const text of [keeper.log, status.stdout, git.stderr]) expect(text).not.toContain(leaked);
    expect(status.stdout).toContain("refused [redacted sha256:");
    expect(git.stderr).toContain("git-token-keeper: no token for");
  });

  it("http: a token service with a bearer credential from a file, token and expiry at JSON paths", async () => {
    const credential = join(world.dir, "service-credential");
    writeFileSync(credential, service.bearer, { mode: 0o600 });
    await world.startKeeper({
      providers: [{ name: "sts", type: "http", gitUrl: world.gitUrl, url: `${service.url}/v1/token`, method: "POST", bearerTokenFile: credential, tokenPath: "data.token", expiresInPath: "data.ttl" }],
    });
    await exerciseProvider(world, { lifetimeMs: LIFETIME_MS, revoke: () => world.ledger.revokeAll() });
  });

  it("file: a Kubernetes projected secret swapped through its ..data symlink is republished", async () => {
    // The kubelet's layout: app/token -> ..data/token, ..data -> ..2026_x (swapped atomically).
    const volume = tempDir();
    const publish = (n: number) => {
      const { token } = world.ledger.issue({ lifetimeMs: 60_000, prefix: "vault_" });
      const dir = join(volume, `..v${n}`);
      mkdirSync(dir);
      writeFileSync(join(dir, "token.secret"), `${token}\n`);
      symlinkSync(`..v${n}`, join(volume, "..data_tmp"));
      renameSync(join(volume, "..data_tmp"), join(volume, "..data"));
      return token;
    };
    const first = publish(1);
    symlinkSync("..data/token.secret", join(volume, "token.secret"));
    const keeper = await world.startKeeper({ providers: [{ name: "vault-file", type: "file", gitUrl: world.gitUrl, path: join(volume, "token.secret") }] });
    const work = tempDir();
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), join(work, "app")], work));
    world.ledger.revoke(first);
    const second = publish(2);
    await keeper.waitForLog(/"reason":"source changed"/);
    await sleep(200);
    await must(world.git(["fetch", "-q", "origin"], join(work, "app")));
    expect(keeper.log.match(/minted token/g)?.length).toBeGreaterThanOrEqual(2);
    // The fetch went out with the republished token: the first one is revoked.
    expect(world.ledger.accepts(second, "acme")).toBe(true);
    rmSync(join(volume, "..v1"), { recursive: true });
  });

  it("file: an expired JWT in the file is refused", async () => {
    const file = join(tempDir(), "jwt");
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
    writeFileSync(file, `${b64({ alg: "none" })}.${b64({ exp: Math.floor(Date.now() / 1000) - 60 })}.sig\n`);
    const keeper = await world.startKeeper({ providers: [{ name: "stale-file", type: "file", gitUrl: world.gitUrl, path: file }] });
    await keeper.waitForLog(/mint failed/);
    expect(keeper.log).toMatch(/the token in '.*jwt' expired at/);
  });
});
