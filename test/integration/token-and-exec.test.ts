import { readFileSync, writeFileSync } from "node:fs";
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

  // Review of issue 24: the authority ended at the last '@', not at '?', '#' or '\\' as a URL
  // parser (and curl) read it: the token went to evil.example.
  it("token and exec give nothing for a URL whose host a parser reads as another", async () => {
    const host = world.gitUrl.replace(/^http:\/\//, "");
    for (const url of [`http://evil.example?@${host}/acme/app`, `http://evil.example#@${host}/acme/app`, `http://evil.example\\@${host}/acme/app`, `http://${host}/acme/app?x=1`, `http://${host}/acme/app#top`, ` http://${host}/acme/app`]) {
      const r = await cli(["token", "--url", url]);
      expect(r.exitCode, url).toBe(1);
      expect(r.stdout, url).toBe("");
      const e = await cli(["exec", "--url", url, "--", "sh", "-c", 'printf %s "$GH_TOKEN"']);
      expect(e.stdout, url).toBe("");
    }
    expect((await cli(["token", "--url", `http://${host.toUpperCase()}/acme/app`])).stdout.trim()).toBe(fileToken("acme"));
  });

  it("exec needs a command and a valid variable name", async () => {
    expect((await cli(["exec", "--url", `${world.gitUrl}/acme/app`])).exitCode).toBe(2);
    expect((await cli(["exec", "--url", `${world.gitUrl}/acme/app`, "--env", "1BAD", "--", "true"])).stderr).toContain("not a variable name");
  });

  // Issue 24, finding 14.
  it("exec passes a child's death by any signal through as 128 + n, and says when the command is not found (127)", async () => {
    for (const [signal, n] of [["ABRT", 6], ["HUP", 1], ["PIPE", 13], ["SEGV", 11], ["QUIT", 3], ["USR1", 10]] as const) {
      const r = await cli(["exec", "--url", `${world.gitUrl}/acme/app`, "--", "sh", "-c", `kill -${signal} $$`]);
      expect(r.stderr).not.toContain("RangeError");
      expect(r.exitCode, signal).toBe(128 + n);
    }
    const missing = await cli(["exec", "--url", `${world.gitUrl}/acme/app`, "--", "no-such-command-here"]);
    expect(missing.exitCode).toBe(127);
    expect(missing.stderr).toContain("cannot run 'no-such-command-here': command not found");
  });

  // Issue 24, finding 8: git through the shim works during an outage while the token is valid; so do these.
  it("token and exec serve the current token while it may be served, though a new one cannot be minted", async () => {
    const file = join(world.stateDir, "tokens", "test-app", "acme");
    const token = fileToken("acme");
    // The daemon restarts during an outage, its token past its refresh time and well before its
    // expiry: it serves it, and every mint fails.
    await world.keeper!.stop();
    const now = Math.floor(Date.now() / 1000);
    writeFileSync(file, readFileSync(file, "utf8").replace(/^refresh_at=.*$/m, `refresh_at=${now - 5}`));
    world.github.failNext(503, 50);
    await world.startKeeper({ providers: [world.providerConfig({ owners: undefined })] });
    try {
      const r = await cli(["token", "--url", `${world.gitUrl}/acme/app`]);
      expect(r.exitCode).toBe(0);
      expect(r.stdout.trim()).toBe(token);
      expect(r.stderr).toContain("a new token could not be minted");
      const e = await cli(["exec", "--url", `${world.gitUrl}/acme/app`, "--", "sh", "-c", 'printf %s "$GH_TOKEN"']);
      expect(e.exitCode).toBe(0);
      expect(e.stdout).toBe(token);
    } finally {
      world.github.clearFaults();
    }
  });
});
