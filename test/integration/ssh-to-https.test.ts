import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

// SSH fails at once here (no key, no server): what matters is whether git tries SSH at all.
const NO_SSH = { GIT_SSH_COMMAND: "false" };

describe("sshToHttps: SSH URLs of a configured host over HTTPS with the keeper's token", () => {
  let world: World;
  const host = "127.0.0.1";
  const scp = (path: string) => `git@${host}:${path}.git`;
  const sshUrl = (path: string) => `ssh://git@${host}/${path}.git`;

  beforeAll(async () => {
    world = await World.create();
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  it("off by default: git@host: URLs are left to SSH", async () => {
    await world.startKeeper();
    const work = tempDir();
    const r = await world.git(["clone", "-q", scp("acme/app"), join(work, "app")], work, { env: NO_SSH });
    expect(r.exitCode).toBe(128);
    expect(r.stderr).toContain("Could not read from remote repository");
    await world.keeper?.stop();
  });

  it("on: git@host:path and ssh://git@host/path clone and fetch over HTTPS; plain git cannot; submodules named by SSH too", async () => {
    await world.startKeeper({ providers: [world.providerConfig({ sshToHttps: true })] });
    const work = tempDir();
    const plain = await world.git(["clone", "-q", scp("acme/app"), join(work, "plain")], work, { shim: false, env: NO_SSH });
    expect(plain.exitCode).toBe(128);
    const app = join(work, "app");
    await must(world.git(["clone", "-q", scp("acme/app"), app], work, { env: NO_SSH }));
    await must(world.git(["clone", "-q", sshUrl("globex/tools"), join(work, "tools")], work, { env: NO_SSH }));
    // The submodule's URL as an SSH URL, the way many repositories name them.
    await must(world.git(["config", "submodule.lib.url", scp("acme/lib")], app));
    await must(world.git(["submodule", "update", "-q", "--init"], app, { env: NO_SSH }));
    await must(world.git(["fetch", "-q", "origin"], app, { env: NO_SSH }));
    // Nothing was written to the repository's config: the remote is still the SSH URL.
    expect((await must(world.git(["config", "remote.origin.url"], app))).stdout.trim()).toBe(scp("acme/app"));
    await world.keeper?.stop();
  });
  it("scoped to what the keeper serves: with owners [acme], git@host:globex/… is left to SSH", async () => {
    await world.startKeeper({ providers: [world.providerConfig({ sshToHttps: true, owners: ["acme"] })] });
    const work = tempDir();
    await must(world.git(["clone", "-q", scp("acme/app"), join(work, "app")], work, { env: NO_SSH }));
    const other = await world.git(["clone", "-q", scp("globex/tools"), join(work, "tools")], work, { env: NO_SSH });
    expect(other.exitCode).toBe(128);
    expect(other.stderr).toContain("Could not read from remote repository");
    await world.keeper?.stop();
  });
});
