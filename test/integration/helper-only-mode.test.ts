import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
});
