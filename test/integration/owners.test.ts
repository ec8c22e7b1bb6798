import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { runCli } from "../support/run-cli.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

describe("which owners a provider serves", () => {
  let world: World | undefined;

  afterEach(async () => {
    await world?.close();
  });
  afterAll(removeTempDirs);

  it("without owners: an owner's installation is found and its token minted on first use", async () => {
    world = await World.create({ installations: [{ id: 11, login: "acme" }, { id: 22, login: "globex", type: "User" }] });
    await world.startKeeper({ providers: [world.providerConfig({ owners: undefined })] });
    expect(world.github.mintCount).toBe(0);
    const work = tempDir();
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), join(work, "a")], work));
    // globex is a user account: found through /users/{owner}/installation.
    await must(world.git(["clone", "-q", world.repoUrl("globex/tools"), join(work, "g")], work));
    expect(world.github.mintCount).toBe(2);
    const notInstalled = await world.git(["ls-remote", world.repoUrl("initech/x")], work);
    expect(notInstalled.exitCode).toBe(128);
    expect(notInstalled.stderr).toContain("git-token-keeper: no token for");
    expect(notInstalled.stderr).toContain("the GitHub App is not installed on 'initech'");
  });

  it("with installationId only: serves that installation's account and no other", async () => {
    world = await World.create();
    await world.startKeeper({ providers: [world.providerConfig({ owners: undefined, installationId: 22 })] });
    const work = tempDir();
    await must(world.git(["clone", "-q", world.repoUrl("globex/tools"), join(work, "g")], work));
    const other = await world.git(["ls-remote", world.repoUrl("acme/app")], work);
    expect(other.exitCode).toBe(128);
    expect(world.github.mintsFor("acme")).toBe(0);
    const status = JSON.parse((await runCli(["status", "--json"], { GIT_TOKEN_KEEPER_DIR: world.stateDir })).stdout);
    expect(status.tokens.map((t: { owner: string }) => t.owner)).toEqual(["globex"]);
  });

  it("repositories narrow the token: another repository of the owner is refused", async () => {
    world = await World.create();
    await world.startKeeper({ providers: [world.providerConfig({ repositories: ["lib"] })] });
    const work = tempDir();
    await must(world.git(["ls-remote", world.repoUrl("acme/lib")], work));
    const r = await world.git(["ls-remote", world.repoUrl("acme/app")], work, { env: { GIT_TOKEN_KEEPER_RETRIES: "1" } });
    expect(r.exitCode).toBe(128);
    expect(r.stderr).toContain("this is a permissions problem, not an expiry");
  });
});
