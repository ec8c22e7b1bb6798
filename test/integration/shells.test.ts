import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { haveTool } from "../support/require-tool.ts";
import { SHIM_DIR } from "../support/run-git.ts";
import { shellsToTest, shimCopyFor } from "../support/shells.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

describe("shim and helper under every shell", () => {
  let world: World;

  beforeAll(async () => {
    world = await World.create();
    await world.startKeeper();
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  it.skipIf(!haveTool("shellcheck"))("shellcheck finds nothing in shim/", () => {
    const files = ["git", "git-credential-token-keeper", "token-keeper-lib.sh", "git-network.sh"].map((f) => join(SHIM_DIR, f));
    expect(execFileSync("shellcheck", ["-s", "sh", ...files], { encoding: "utf8" })).toBe("");
  });

  for (const shell of shellsToTest()) {
    it(`${shell}: clone, push after revocation, submodule update`, async () => {
      world.shimDir = shimCopyFor(shell);
      const work = tempDir();
      const app = join(work, "app");
      await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work));
      writeFileSync(join(app, `${shell}.txt`), "x\n");
      await must(world.git(["add", "."], app));
      await must(world.git(["commit", "-q", "-m", shell], app));
      await must(world.git(["pull", "-q", "--rebase", "origin", "main"], app));
      world.github.revokeAll();
      const push = await must(world.git(["push", "origin", "HEAD:main"], app));
      expect(push.stderr).toContain("retrying with a new one");
      await must(world.git(["submodule", "update", "--init", "-q"], app));
      await must(world.git(["ls-remote", "origin"], app));
    });
  }
});
