import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { execa } from "execa";
import { GitHttpServer } from "../fakes/git-http-server.ts";
import { runGit, SHIM_DIR } from "../support/run-git.ts";
import { uptime } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatTokenRecord } from "../../src/store/token-file.ts";
import { shellsToTest, shimCopyFor, type ShellName } from "../support/shells.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { fakeGhToken } from "../support/fake-secrets.ts";

/**
 * The helper against a state dir laid out as the daemon lays it out, run the way git runs it.
 * Routes: https://github.com serves acme and globex through `gh`; http://127.0.0.1:8080 serves
 * any owner through `local`.
 */
const now = Math.floor(Date.now() / 1000);
const TOKENS: Record<string, string> = { acme: fakeGhToken("acmeTOKEN".repeat(3)), globex: fakeGhToken("globexTOKEN".repeat(3)), anyone: "local-token-for-anyone-0003" };

/** A daemon's state dir as it leaves it: alive (a fresh heartbeat) or killed (its last beat 40 s ago). */
function layState(dir: string, options: { alive: boolean; expires?: number }): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, "tokens", "gh"), { recursive: true, mode: 0o700 });
  mkdirSync(join(dir, "tokens", "local"), { recursive: true });
  mkdirSync(join(dir, "requests"), { recursive: true });
  writeFileSync(join(dir, "routes"), "https://github.com gh / owner acme,globex\nhttp://127.0.0.1:8080 local / owner *\n");
  // The pid is never checked (the daemon may be in another PID namespace): 1 is alive here.
  writeFileSync(join(dir, "daemon.pid"), "1\n");
  const beat = Math.floor(Date.now() / 1000) - (options.alive ? 0 : 40);
  // Third field: when the machine booted, as the daemon writes it (the helper reads the time
  // from it and /proc/uptime instead of starting `date`).
  writeFileSync(join(dir, "heartbeat"), `${beat} ${new Date(beat * 1000).toISOString()} ${Math.round(Date.now() / 1000 - uptime())}\n`);
  const expires = options.expires ?? now + 3600;
  for (const [owner, provider] of [["acme", "gh"], ["globex", "gh"], ["anyone", "local"]] as const) {
    writeFileSync(
      join(dir, "tokens", provider, owner),
      formatTokenRecord({ token: TOKENS[owner]!, username: "x-access-token", expires, refreshAt: expires - 600, mintedAt: now, serial: 7 }),
    );
  }
}

function helper(shimDir: string, stateDir: string, action: string, input: string | Buffer, env: Record<string, string> = {}) {
  const r = spawnSync(join(shimDir, "git-credential-token-keeper"), [action], {
    input,
    env: { PATH: process.env.PATH, GIT_TOKEN_KEEPER_DIR: stateDir, GIT_TOKEN_KEEPER_WAIT: "1", ...env },
    encoding: "utf8",
    timeout: 10_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

afterAll(removeTempDirs);

for (const shell of shellsToTest() as ShellName[]) {
  describe(`credential helper under ${shell}`, () => {
    let shim: string;
    let state: string;
    const get = (input: string, env?: Record<string, string>) => helper(shim, state, "get", input, env);

    beforeAll(() => {
      shim = shimCopyFor(shell);
      state = join(tempDir(), "state");
      layState(state, { alive: true });
    });


    // Issue 24, finding 3: the daemon's timers stop while a machine is suspended; the helper
    // judges by the wall clock (heartbeat + /proc/uptime) whether a token may still be served.
    it("never answers a token past its serve_until, with the daemon alive (it asks for a new one) or gone", () => {
      const input = "protocol=https\nhost=github.com\npath=acme/app\n";
      const t = Math.floor(Date.now() / 1000);
      const lay = (alive: boolean, serveUntil: number | undefined) => {
        layState(state, { alive });
        writeFileSync(
          join(state, "tokens", "gh", "acme"),
          formatTokenRecord({ token: TOKENS.acme!, username: "x-access-token", expires: t + 8, serveUntil, refreshAt: t - 60, mintedAt: t - 3600, serial: 7 }),
        );
      };
      lay(true, t - 2);
      const asked = get(input);
      expect(asked.stdout).not.toContain(TOKENS.acme);
      expect(asked.stdout).toContain("quit=1");
      expect(asked.stderr).toContain("did not answer");
      lay(false, t - 2);
      const gone = get(input);
      expect(gone.stdout).not.toContain(TOKENS.acme);
      expect(gone.stderr).toContain("expired and the daemon is not running");
      // Before serve_until it is answered; a file without one (an older daemon's) counts its expiry.
      lay(false, t + 5);
      expect(get(input).stdout).toContain(`password=${TOKENS.acme}`);
      lay(true, undefined);
      expect(get(input).stdout).toContain(`password=${TOKENS.acme}`);
    });

    // A caller that exported `token` or `password` (any name the helper uses) must not see the
    // helper's values in the environment of what it runs (base64 here; od, sleep elsewhere).
    it("a token never reaches the environment of a process the helper runs, whatever the caller exported", () => {
      layState(state, { alive: true });
      const bin = tempDir();
      const dump = join(bin, "env-seen");
      writeFileSync(join(bin, "base64"), `#!/bin/sh\nenv >>'${dump}'\nexec /usr/bin/base64 "$@"\n`, { mode: 0o755 });
      // SHELLOPTS=allexport: bash, as sh too, takes it from the environment and exports every
      // variable it sets from then on (review of issue 24).
      const exported = { token: "x", password: "x", basic: "x", line: "x", username: "x", SHELLOPTS: "allexport", PATH: `${bin}:${process.env.PATH}` };
      const r = get("capability[]=authtype\nprotocol=https\nhost=github.com\npath=acme/app\n", exported);
      expect(r.stdout).toContain("credential=");
      expect(readFileSync(dump, "utf8")).not.toContain(TOKENS.acme);
    });

    // Review of issue 24: the reckoning (heartbeat + /proc/uptime) carries a clock set forward
    // only through a live daemon. With the daemon gone, or a date that prints seconds only for
    // %N, or a heartbeat of an earlier boot, the helper answered tokens expired by the clock.
    describe("a clock the heartbeat does not know of", () => {
      const input = "protocol=https\nhost=github.com\npath=acme/app\n";
      /** A `date` on PATH whose clock is `aheadS` ahead, printing seconds only whatever it is asked. */
      const dateAhead = (aheadS: number) => {
        const bin = tempDir();
        writeFileSync(join(bin, "date"), `#!/bin/sh\necho $(( $(/bin/date +%s) + ${aheadS} ))\n`, { mode: 0o755 });
        return { PATH: `${bin}:${process.env.PATH}` };
      };
      const layToken = (serveInS: number) => {
        const t = Math.floor(Date.now() / 1000);
        writeFileSync(
          join(state, "tokens", "gh", "acme"),
          formatTokenRecord({ token: TOKENS.acme!, username: "x-access-token", expires: t + serveInS + 10, serveUntil: t + serveInS, refreshAt: t + serveInS - 60, mintedAt: t - 60, serial: 7 }),
        );
      };

      it("the daemon gone and the clock set 3 hours forward: a token with 2 hours left by the heartbeat is not answered", () => {
        layState(state, { alive: false });
        rmSync(join(state, "daemon.pid"));
        layToken(7200);
        const r = get(input, dateAhead(3 * 3600));
        expect(r.stdout).not.toContain(TOKENS.acme);
        expect(r.stderr).toContain("expired and the daemon is not running");
      });

      it("a date that prints seconds only: still asked in a token's last minutes", () => {
        layState(state, { alive: true });
        layToken(100);
        const r = get(input, dateAhead(200));
        expect(r.stdout).not.toContain(TOKENS.acme);
      });

      it("a heartbeat of an earlier boot (a state dir kept across a reboot): its boot time is not used, and its daemon is gone", () => {
        layState(state, { alive: true });
        rmSync(join(state, "daemon.pid"));
        // Written a day ago in a boot that had lasted ten days; by its reckoning now is a day ago.
        const t = Math.floor(Date.now() / 1000);
        const beat = t - 86_400;
        const booted = beat - 864_000;
        writeFileSync(join(state, "heartbeat"), `${beat} ${new Date(beat * 1000).toISOString()} ${Math.round(booted - uptime())} ${Math.round((booted - uptime()) * 1000)} 00000000-0000-4000-8000-000000000000\n`);
        layToken(-3600);
        const r = get(input);
        expect(r.stdout).not.toContain(TOKENS.acme);
        expect(r.stderr).toContain("expired and the daemon is not running");
      });
    });

    it("answers a get without starting any process: the time comes from the heartbeat and /proc/uptime", () => {
      layState(state, { alive: true });
      // No command can be found: anything but the shell's builtins would fail.
      const r = get("protocol=https\nhost=github.com\npath=acme/app\n", { PATH: "/nonexistent" });
      expect(r.stderr).toBe("");
      expect(r.stdout).toContain(`password=${TOKENS.acme}`);
      layState(state, { alive: false });
      const left = get("protocol=https\nhost=github.com\npath=acme/app\n", { PATH: "/nonexistent" });
      expect(left.stdout).toContain(`password=${TOKENS.acme}`);
      expect(left.stderr).toMatch(/the daemon is not running; using the token it left, which expires in (35\d\d|36\d\d)s/);
      layState(state, { alive: true });
    });
    it("answers a configured host with the owner's token and its expiry", () => {
      const r = get("protocol=https\nhost=github.com\npath=acme/app.git\n\n");
      expect(r.stdout).toBe(`username=x-access-token\npassword=${TOKENS.acme}\npassword_expiry_utc=${now + 3600}\n`);
      expect(get("protocol=https\nhost=github.com\npath=globex/tools.git\n").stdout).toContain(TOKENS.globex);
    });

    it("treats host and owner case-insensitively and the default port as absent", () => {
      expect(get("protocol=https\nhost=GitHub.COM\npath=ACME/app.git\n").stdout).toContain(TOKENS.acme);
      expect(get("protocol=https\nhost=github.com:443\npath=acme/app\n").stdout).toContain(TOKENS.acme);
    });

    it.each([
      ["a look-alike host", "protocol=https\nhost=github.com.evil.example\npath=acme/app\n"],
      ["a fragment trick", "protocol=https\nhost=evil.example#github.com\npath=acme/app\n"],
      ["another port", "protocol=https\nhost=github.com:444\npath=acme/app\n"],
      ["another protocol", "protocol=http\nhost=github.com\npath=acme/app\n"],
      ["an owner nobody configured", "protocol=https\nhost=github.com\npath=initech/app\n"],
      ["a path that climbs", "protocol=https\nhost=github.com\npath=../globex/x\n"],
      ["no path", "protocol=https\nhost=github.com\n"],
      ["an IDN look-alike", "protocol=https\nhost=gіthub.com\npath=acme/app\n"],
      ["ssh", "protocol=ssh\nhost=github.com\npath=acme/app\n"],
    ])("answers nothing for %s", (_name, input) => {
      const r = get(input);
      expect(r.status).toBe(0);
      expect(r.stdout).toBe("");
    });

    it("serves any owner where the route says *", () => {
      expect(get("protocol=http\nhost=127.0.0.1:8080\npath=anyone/x.git\n").stdout).toContain(TOKENS.anyone);
    });

    it("survives garbage: NUL bytes, long lines, repeated keys, no blank line", () => {
      const inputs: (string | Buffer)[] = [
        Buffer.from("protocol=https\nhost=github.com\0evil\npath=acme/x\n"),
        `protocol=https\nhost=${"a".repeat(100_000)}\npath=acme/x\n`,
        "host=evil.example\nhost=github.com\nprotocol=https\nprotocol=https\npath=acme/app\nunknown=1\n",
        "no equals sign here\n\n",
        "",
      ];
      for (const input of inputs) {
        const r = helper(shim, state, "get", input);
        expect(r.status).toBe(0);
        for (const line of r.stdout.split("\n").filter(Boolean)) expect(line).toMatch(/^(username|password|password_expiry_utc)=/);
      }
      // The last host wins, as in git: github.com, so acme's token is right there.
      expect(helper(shim, state, "get", inputs[2]!).stdout).toContain(TOKENS.acme);
    });

    it("never answers a generated hostile request with a token for the wrong host, port, protocol or owner", () => {
      const hosts = ["github.com", "GITHUB.com", "github.com.", "github.com:443", "github.com:444", "xgithub.com", "github.com@evil", "127.0.0.1:8080", "127.0.0.1:808", "127.0.0.1"];
      const protocols = ["https", "http", "HTTPS", "ftp"];
      const paths = ["acme/a", "globex/b", "Acme/c", "anyone/d", "../acme/x", "/acme/y", "acme", "initech/z", "acme%2fglobex/x", ""];
      let seed = 42;
      const pick = <T,>(a: T[]) => a[(seed = (seed * 1103515245 + 12345) % 2 ** 31) % a.length] as T;
      for (let i = 0; i < 60; i++) {
        const [protocol, host, path] = [pick(protocols), pick(hosts), pick(paths)];
        const out = get(`protocol=${protocol}\nhost=${host}\npath=${path}\n`).stdout;
        const password = /password=(.*)/.exec(out)?.[1];
        if (!password) continue;
        const owner = path.replace(/^\//, "").split("/")[0]!.toLowerCase();
        if (password === TOKENS.anyone) {
          expect([protocol, host]).toEqual(["http", "127.0.0.1:8080"]);
        } else {
          expect(protocol).toBe("https");
          expect(["github.com", "github.com:443"]).toContain(host.toLowerCase());
          expect(password).toBe(TOKENS[owner]);
        }
      }
    });

    it("on erase of the current token asks the daemon for a new one and waits until it is done", async () => {
      const requests = join(state, "requests");
      const taken: string[] = [];
      // Stands in for the daemon: takes each request a little later.
      const fakeDaemon = setInterval(() => {
        for (const name of readdirSync(requests)) {
          taken.push(name);
          rmSync(join(requests, name));
        }
      }, 300);
      try {
        const started = Date.now();
        const r = await execa(join(shim, "git-credential-token-keeper"), ["erase"], {
          input: `protocol=https\nhost=github.com\npath=acme/app\nusername=x-access-token\npassword=${TOKENS.acme}\n`,
          env: { PATH: process.env.PATH, GIT_TOKEN_KEEPER_DIR: state, GIT_TOKEN_KEEPER_WAIT: "5" },
          extendEnv: false,
        });
        expect(r.exitCode).toBe(0);
        expect(r.stderr).toBe("");
        expect(Date.now() - started).toBeGreaterThanOrEqual(250);
        expect(taken).toHaveLength(1);
        expect(taken[0]).toMatch(/^remint\+gh\+acme\+7\+[0-9a-f]{16}$/);
      } finally {
        clearInterval(fakeDaemon);
      }
    });

    it("gives up waiting for a daemon that never answers, with a message", () => {
      const r = helper(shim, state, "erase", `protocol=https\nhost=github.com\npath=acme/app\npassword=${TOKENS.acme}\n`);
      expect(r.stderr).toContain("the daemon did not answer within 1s; see its log");
      expect(readdirSync(join(state, "requests"))).toEqual([]);
    });

    it("ignores erase of a token that is not the keeper's current one", () => {
      const r = helper(shim, state, "erase", "protocol=https\nhost=github.com\npath=acme/app\npassword=ghs_someoneElsesStaleToken\n");
      expect(r.stdout + r.stderr).toBe("");
      expect(readdirSync(join(state, "requests"))).toEqual([]);
    });

    it("store does nothing", () => {
      expect(helper(shim, state, "store", "protocol=https\nhost=github.com\npassword=x\n").stdout).toBe("");
    });

    it("with the daemon down uses a token it left until expiry, with a warning", () => {
      const down = join(tempDir(), "down");
      layState(down, { alive: false });
      const r = helper(shim, down, "get", "protocol=https\nhost=github.com\npath=acme/app\n");
      expect(r.stdout).toContain(TOKENS.acme);
      expect(r.stderr).toMatch(/the daemon is not running; using the token it left, which expires in \d+s/);
    });

    it("with the daemon down and the token expired says so in one line and tells git to stop", () => {
      const down = join(tempDir(), "expired");
      layState(down, { alive: false, expires: now - 10 });
      const r = helper(shim, down, "get", "protocol=https\nhost=github.com\npath=acme/app\n");
      expect(r.stdout).toBe("quit=1\n");
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain("git-token-keeper: the token for https://github.com/acme/app expired and the daemon is not running; start it with 'git-token-keeper run'");
    });
  });
}

describe("helper error through git", () => {
  it("git fails at once with the helper's one-line message when the daemon is down and the token expired", async () => {
    const server = new GitHttpServer(tempDir(), () => false);
    await server.start();
    try {
      const state = join(tempDir(), "expired");
      layState(state, { alive: false, expires: now - 10 });
      writeFileSync(join(state, "routes"), `${server.url} gh / owner acme\n`);
      writeFileSync(join(state, "origins"), `${server.url}\n`);
      const home = tempDir();
      const r = await runGit(["ls-remote", `${server.url}/acme/app.git`], { cwd: home, home, shimDir: SHIM_DIR, stateDir: state });
      expect(r.exitCode).toBe(128);
      expect(r.stderr).toContain(`git-token-keeper: the token for ${server.url}/acme/app.git expired and the daemon is not running`);
      expect(r.stderr).toContain("told us to quit");
      expect(r.stderr).not.toContain("retrying");
      // git asked only the keeper's helper, and nothing was sent with a password.
      expect(server.seen.every((s) => s.authorization === undefined)).toBe(true);
    } finally {
      await server.stop();
    }
  });
});
