import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../support/run-cli.ts";
import { removeTempDirs } from "../support/temp-dir.ts";
import { World } from "../support/world.ts";

describe("tokens for other tools: token --url and exec --url", () => {
  let world: World;
  const cli = (args: string[]) => runCli(args, { GIT_TOKEN_KEEPER_DIR: world.stateDir });
  const fileToken = (owner: string) => readFileSync(join(world.stateDir, "tokens", "test-app", owner), "utf8").match(/^token=(.*)$/m)?.[1];

  beforeAll(async () => {
    // Handing a token to a command is this feature's point: its tokens are left out of the secrets audit.
    world = await World.create({ audit: false });
    await world.startKeeper({ providers: [world.providerConfig({ owners: undefined })] });
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  it("token --url mints on first use and prints the owner's current token", async () => {
    const r = await cli(["token", "--url", `${world.gitUrl}/globex/tools`]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim()).toBe(fileToken("globex"));
    expect(world.github.accepts(r.stdout.trim(), "globex")).toBe(true);
  });

  it("token --url refuses a URL no provider serves", async () => {
    const r = await cli(["token", "--url", "https://github.com.evil.example/acme/app"]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("no provider serves https://github.com.evil.example/acme/app");
  });

  it("exec --url puts the token in GH_TOKEN for a GitHub App, or in --env NAME, and returns the command's exit code", async () => {
    const r = await cli(["exec", "--url", `${world.gitUrl}/acme/app`, "--", "sh", "-c", 'printf %s "$GH_TOKEN"; exit 7']);
    expect(r.exitCode).toBe(7);
    expect(r.stdout).toBe(fileToken("acme"));
    const named = await cli(["exec", "--url", `${world.gitUrl}/acme/app`, "--env", "NPM_TOKEN", "--", "sh", "-c", 'printf %s "$NPM_TOKEN-$GH_TOKEN"']);
    expect(named.stdout).toBe(`${fileToken("acme")}-`);
  });

  it("exec needs a command and a valid variable name", async () => {
    expect((await cli(["exec", "--url", `${world.gitUrl}/acme/app`])).exitCode).toBe(2);
    expect((await cli(["exec", "--url", `${world.gitUrl}/acme/app`, "--env", "1BAD", "--", "true"])).stderr).toContain("not a variable name");
  });
});
