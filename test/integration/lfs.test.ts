import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { haveTool } from "../support/require-tool.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

// git-lfs against the fake LFS batch API (upload, download, locks), with the stale credentials
// other tools leave behind. Each case shows plain git failing first.
describe.skipIf(!haveTool("git-lfs", "git-lfs is not installed"))("git-lfs through the shim", () => {
  let world: World;
  let stale: string;
  const staleHeader = () => `AUTHORIZATION: basic ${Buffer.from(`x-access-token:${stale}`).toString("base64")}`;

  beforeAll(async () => {
    world = await World.create();
    await world.startKeeper();
    stale = world.github.issueToken("acme");
    world.github.revokeAll();
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  /** A clone with LFS set up and one new LFS object committed, not pushed. */
  async function lfsClone(name: string): Promise<{ app: string; oid: string; content: Buffer }> {
    const work = tempDir();
    const app = join(work, name);
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work));
    await must(world.git(["lfs", "install", "--local"], app));
    await must(world.git(["lfs", "track", "*.bin"], app));
    const content = randomBytes(2048);
    writeFileSync(join(app, `${name}.bin`), content);
    await must(world.git(["add", ".gitattributes", `${name}.bin`], app));
    await must(world.git(["commit", "-q", "-m", `lfs ${name}`], app));
    const oid = (await must(world.git(["lfs", "ls-files", "--long"], app))).stdout.split(" ")[0] as string;
    return { app, oid, content };
  }

  it("upload and download with actions/checkout's Authorization header (lfs: true): plain git fails, the shim pushes and another clone pulls", async () => {
    const { app, oid, content } = await lfsClone("upload");
    await must(world.git(["config", `http.${world.gitUrl}/.extraheader`, staleHeader()], app, { shim: false }));
    const plain = await world.git(["push", "origin", "HEAD:refs/heads/lfs-plain"], app, { shim: false });
    expect(plain.exitCode).not.toBe(0);
    const push = await world.git(["push", "origin", "HEAD:refs/heads/lfs-upload"], app);
    expect(push.exitCode, push.stderr).toBe(0);
    expect(world.server.lfs.objects.get("acme/app")?.has(oid)).toBe(true);
    const work = tempDir();
    const other = join(work, "other");
    // The checkout leaves LFS pointers; `git lfs pull` downloads the objects.
    await must(world.git(["clone", "-q", "-b", "lfs-upload", world.repoUrl("acme/app"), other], work, { env: { GIT_LFS_SKIP_SMUDGE: "1" } }));
    await must(world.git(["lfs", "install", "--local"], other));
    await must(world.git(["config", `http.${world.gitUrl}/.extraheader`, staleHeader()], other, { shim: false }));
    expect((await world.git(["lfs", "pull"], other, { shim: false })).exitCode).not.toBe(0);
    await must(world.git(["lfs", "pull"], other));
    expect(readFileSync(join(other, "upload.bin")).equals(content)).toBe(true);
  });

  it("locks: verify on push, lock and list, with the stale header", async () => {
    const { app } = await lfsClone("locks");
    await must(world.git(["config", `http.${world.gitUrl}/.extraheader`, staleHeader()], app, { shim: false }));
    expect((await world.git(["lfs", "lock", "locks.bin"], app, { shim: false })).exitCode).not.toBe(0);
    await must(world.git(["lfs", "lock", "locks.bin"], app));
    expect((await must(world.git(["lfs", "locks"], app))).stdout).toContain("locks.bin");
    await must(world.git(["push", "-q", "origin", "HEAD:refs/heads/lfs-locks"], app));
    expect(world.server.seen.some((r) => r.path.endsWith("/info/lfs/locks/verify") && r.status === 200)).toBe(true);
  });

  it("a remote URL with an expired token in it: plain git-lfs fails, the shim pushes", async () => {
    const { app } = await lfsClone("url");
    await must(world.git(["remote", "set-url", "origin", world.repoUrl("acme/app").replace("http://", `http://x-access-token:${stale}@`)], app, { shim: false }));
    expect((await world.git(["push", "origin", "HEAD:refs/heads/lfs-url-plain"], app, { shim: false })).exitCode).not.toBe(0);
    const push = await world.git(["push", "origin", "HEAD:refs/heads/lfs-url"], app);
    expect(push.exitCode, push.stderr).toBe(0);
  });

  it("every token revoked before `git lfs push`: git-lfs's erase has the token re-minted, and its own resubmission succeeds", async () => {
    const { app, oid } = await lfsClone("revoked");
    await must(world.git(["push", "-q", "origin", "HEAD:refs/heads/lfs-revoked"], app, { env: { GIT_LFS_SKIP_PUSH: "1" } }));
    await new Promise((r) => setTimeout(r, 1_100));
    world.github.revokeAll();
    const mints = world.github.mintsFor("acme");
    const push = await world.git(["lfs", "push", "--object-id", "origin", oid], app);
    expect(push.exitCode, push.stderr).toBe(0);
    expect(world.github.mintsFor("acme")).toBe(mints + 1);
    expect(world.server.lfs.objects.get("acme/app")?.has(oid)).toBe(true);
  });

  describe("the retry policy's lfs row", () => {
    const helper = () => ["-c", `credential.helper=${join(world.shimDir, "git-credential-token-keeper")}`, "-c", "credential.useHttpPath=true"];
    const batch = /acme\/app\.git\/info\/lfs\/objects\/batch$/;

    it("a transient error is git-lfs's to retry: the shim runs it once", async () => {
      const { app, oid } = await lfsClone("transient");
      const count = () => world.server.seen.filter((r) => batch.test(r.path)).length;
      world.server.failNext(502, 100, batch);
      let before = count();
      const plain = await world.git([...helper(), "lfs", "push", "--object-id", "origin", oid], app, { shim: false });
      const byItself = count() - before;
      before = count();
      const r = await world.git(["lfs", "push", "--object-id", "origin", oid], app);
      world.server.clearFaults();
      expect(plain.exitCode).not.toBe(0);
      expect(r.exitCode).not.toBe(0);
      expect(count() - before).toBe(byItself);
    });
  });
});
