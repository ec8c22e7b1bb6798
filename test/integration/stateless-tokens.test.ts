import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../support/run-cli.ts";
import { SHIM_DIR } from "../support/run-git.ts";
import { auditToken, leakedTokens } from "../support/secrets-audit.ts";
import { toolPath } from "../support/require-tool.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

/**
 * GitHub's stateless installation tokens (`ghs_` and a signed JWT, dots included, about 520
 * characters; hosts' limits move, so a few kilobytes too) carried whole: the token file, the sh
 * helper, git's Basic path, a re-mint after the host refuses one; and never in the log, in whole
 * or in any part of 16 characters.
 */
for (const bytes of [520, 4096]) {
  describe(`stateless installation tokens of ${bytes} characters`, () => {
    let world: World;

    beforeAll(async () => {
      world = await World.create();
      world.github.tokenFormat = "stateless";
      world.github.statelessBytes = bytes;
      await world.startKeeper({
        metrics: { listen: `unix:${join(world.dir, "metrics.sock")}` },
        providers: [
          world.providerConfig(),
          // A token command that fails and says why with a token in its words (a vault CLI
          // echoing what it refused); its file ends in .secret, which the file audit skips.
          { name: "leaky", type: "exec", gitUrl: world.gitUrl.replace("127.0.0.1", "localhost"), command: `cat '${join(world.dir, "leak.secret")}' >&2; exit 3`, shell: true },
        ],
      });
    });

    afterAll(async () => {
      await world.close();
      removeTempDirs();
    });

    it("clone, push, and a push after every token was revoked, through the shim", async () => {
      const work = tempDir();
      const app = join(work, "app");
      await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work));
      writeFileSync(join(app, "stateless.txt"), `${bytes}\n`);
      await must(world.git(["add", "stateless.txt"], app));
      await must(world.git(["commit", "-q", "-m", "stateless"], app));
      await must(world.git(["push", "-q", "origin", `HEAD:refs/heads/stateless-${bytes}`], app));
      world.github.revokeAll();
      const push = await must(world.git(["push", "origin", `HEAD:refs/heads/stateless-${bytes}-again`], app));
      expect(push.stderr).toContain("retrying with a new one");
      const issued = [...world.github.tokens.keys()];
      expect(issued.every((t) => t.length >= bytes - 8 && t.split(".").length === 3)).toBe(true);
      const stored = /^token=(.*)$/m.exec(readFileSync(join(world.stateDir, "tokens", "test-app", "acme"), "utf8"))?.[1];
      expect(issued).toContain(stored);
    });

    it("a token command's stderr, an API error body and a git error line with such tokens: no part in the log, status, doctor, metrics or the shim's messages", async () => {
      const leak = (label: string) => {
        const token = world.github.issueToken("acme");
        auditToken(token);
        return { label, token };
      };
      // 1. The token command's stderr (written before it next runs).
      const fromCommand = leak("token command");
      writeFileSync(join(world.dir, "leak.secret"), `refused: ${fromCommand.token} is not valid for this role\n`);
      // 2. An API error body quoting a token, on the next mints.
      const fromApi = leak("API error body");
      world.github.failNext(422, 4, {}, JSON.stringify({ message: `Validation failed: ${fromApi.token} is not a valid installation token`, documentation_url: "https://docs.github.com/rest" }));
      await runCli(["refresh"], { GIT_TOKEN_KEEPER_DIR: world.stateDir });
      await world.keeper!.waitForLog(/Validation failed/);
      await world.keeper!.waitForLog(/the token command exited with 3/);
      // 3. A git error line naming a URL with a token in it (git leaves the userinfo out of its
      //    own messages; a git that did not, or a wrapper around it, must not make the shim repeat
      //    it: the shim reads no text of git's, and names URLs as the helper got them).
      const fromGit = leak("git error line");
      const standIn = join(tempDir(), "git");
      const gitLeak = join(world.dir, "git-leak.secret");
      writeFileSync(gitLeak, fromGit.token);
      writeFileSync(standIn, `#!/bin/sh\ncase " $* " in *" ls-remote "*) echo "fatal: Authentication failed for 'http://x-access-token:$(cat '${gitLeak}')@${new URL(world.gitUrl).host}/acme/app.git/'" >&2; exit 128 ;; esac\nexec '${toolPath("git")}' "$@"\n`);
      chmodSync(standIn, 0o755);
      const git = await world.git(["ls-remote", world.repoUrl("acme/app")], tempDir(), { env: { GIT_TOKEN_KEEPER_REAL_GIT: standIn, GIT_TOKEN_KEEPER_RETRIES: "1" } });
      const ours = git.stderr.split("\n").filter((l) => l.startsWith("git-token-keeper:")).join("\n");
      expect(git.exitCode).toBe(128);
      expect(ours).not.toContain("x-access-token:");
      // What the keeper shows.
      const env = { GIT_TOKEN_KEEPER_DIR: world.stateDir, PATH: `${SHIM_DIR}:${process.env.PATH}`, HOME: world.home };
      const status = await runCli(["status"], env);
      const statusJson = await runCli(["status", "--json"], env);
      const doctor = await runCli(["doctor", "--config", join(world.dir, "keeper.yaml")], env);
      const metrics = await new Promise<string>((resolve, reject) => {
        const req = request({ socketPath: join(world.dir, "metrics.sock"), path: "/metrics" }, (res) => {
          let body = "";
          res.on("data", (c: Buffer) => (body += c.toString()));
          res.on("end", () => resolve(body));
        });
        req.on("error", reject);
        req.end();
      });
      expect(statusJson.stdout).toContain("Validation failed");
      expect(statusJson.stdout).toContain("the token command exited with 3");
      const issued = [...world.github.tokens.keys()];
      for (const [where, text] of Object.entries({ log: world.keeper!.log, status: status.stdout + status.stderr, "status --json": statusJson.stdout, doctor: doctor.stdout + doctor.stderr, metrics, "the shim's messages": ours })) {
        // (Named by their first characters: a failure must not print the token it found.)
        expect(leakedTokens(text, issued).map((t) => `${t.slice(0, 12)}…`), where).toEqual([]);
      }
    });

    it("no part of 16 characters of any issued token is in the daemon's log", () => {
      const log = world.keeper?.log ?? "";
      for (const token of world.github.tokens.keys()) {
        for (let i = 0; i + 16 <= token.length; i += 16) expect(log.includes(token.slice(i, i + 16)), `part at ${i}`).toBe(false);
      }
    });
  });
}
