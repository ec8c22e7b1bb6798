import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { SHIM_DIR } from "../support/run-git.ts";
import { GitHttpServer } from "../fakes/git-http-server.ts";
import { generateAppKey } from "../support/app-key.ts";
import { KeeperProcess } from "../support/keeper-process.ts";
import { runCli } from "../support/run-cli.ts";
import { mintedTokens } from "../support/secrets-audit.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";
import { fileGroup, scenario } from "./scenario.ts";
import { fakePemBlock } from "../support/fake-secrets.ts";

const group = `hostile URLs, config and state dirs (${fileGroup(import.meta.url)})`;

describe("hostile URLs through the shim", () => {
  let world: World;
  let trap: GitHttpServer;

  beforeAll(async () => {
    world = await World.create();
    await world.startKeeper();
    // A host on another loopback address and port that records every Authorization it gets.
    trap = new GitHttpServer(join(world.dir, "repos"), () => false);
    await trap.start();
  });

  afterAll(async () => {
    await trap.stop();
    await world.close();
    removeTempDirs();
  });

  const origin = () => world.gitUrl.replace("http://", "");
  const trapHost = () => trap.url.replace("http://", "");

  scenario(group, "URLs that smuggle the configured host into userinfo, path or host name", "no token offered to any host but the configured one", async () => {
    const urls = [
      `http://${origin()}@${trapHost()}/acme/app.git`,
      `http://${trapHost()}/${origin()}/acme/app.git`,
      `http://x@${trapHost()}/acme/app.git`,
      `${trap.url}/acme/app.git?host=${origin()}`,
      // The same server under another name: not what was configured, so nothing is offered.
      `http://localhost:${world.gitUrl.split(":").pop()}/acme/app.git`,
    ];
    const before = world.server.seen.length;
    const work = tempDir();
    for (const url of urls) {
      const r = await world.git(["ls-remote", url], work);
      expect(r.exitCode).not.toBe(0);
    }
    const minted = mintedTokens();
    const offered = [...trap.seen, ...world.server.seen.slice(before)].map((s) => s.authorization ?? "").filter(Boolean);
    const decoded = offered.map((a) => Buffer.from(a.replace(/^basic /i, ""), "base64").toString());
    expect(decoded.filter((d) => minted.some((t) => d.includes(t)))).toEqual([]);
    return `${urls.length} URLs; ${trap.seen.length} requests to the trap host; ${offered.length} Authorization headers in all, none with a minted token`;
  });

  // A state dir somebody else can write (made in /tmp before the daemon, or opened up later):
  // its tokens and routes are anybody's. The shim says so and runs plain git; the helper, for a
  // user who may write it without owning it, answers nothing.
  scenario(group, "a state dir others can write (mode 0777)", "the shim says so once and git runs without the keeper; the helper answers nothing to a user who may write it without owning it", async () => {
    const work = tempDir();
    chmodSync(world.stateDir, 0o777);
    // Another user can reach it and read its routes (as in the shared-group layout).
    chmodSync(world.dir, 0o711);
    chmodSync(join(world.stateDir, "routes"), 0o644);
    try {
      const before = world.server.seen.length;
      const r = await world.git(["ls-remote", world.repoUrl("acme/app")], work);
      expect(r.stderr).toContain("can be written by others than its owner");
      expect(r.stderr.match(/git-token-keeper:/g)?.length).toBe(1);
      expect(r.exitCode).not.toBe(0);
      const offered = world.server.seen.slice(before).map((x) => x.authorization ?? "").filter(Boolean);
      expect(offered).toEqual([]);
      // The helper, run by another user as git would run it, from a copy that user can reach
      // (the checkout may be in a folder only its owner enters).
      const shimCopy = tempDir();
      chmodSync(shimCopy, 0o755);
      for (const name of readdirSync(SHIM_DIR)) {
        copyFileSync(join(SHIM_DIR, name), join(shimCopy, name));
        chmodSync(join(shimCopy, name), 0o755);
      }
      const helper = await execa(join(shimCopy, "git-credential-token-keeper"), ["get"], {
        input: `protocol=http\nhost=${world.gitUrl.replace("http://", "")}\npath=acme/app.git\n\n`,
        env: { PATH: process.env.PATH, GIT_TOKEN_KEEPER_DIR: world.stateDir },
        reject: false,
        uid: 65534,
        gid: 65534,
      });
      expect(helper.stdout).not.toContain("password=");
      expect(helper.stderr).toContain("writable by this user but not its own");
    } finally {
      chmodSync(world.stateDir, 0o700);
      chmodSync(world.dir, 0o700);
    }
    const ok = await world.git(["ls-remote", world.repoUrl("acme/app")], work);
    expect(ok.exitCode, ok.stderr).toBe(0);
    // Root may write every folder: a state dir of another user's (the daemon's, in a pod) is
    // no reason to run without the keeper, for a content-reading command or a network one.
    chownSync(world.stateDir, 12345, 12345);
    try {
      const clone = join(work, "as-root");
      const r = await world.git(["clone", "-q", world.repoUrl("acme/app"), clone], work);
      expect(r.exitCode, r.stderr).toBe(0);
      const log = await world.git(["log", "-1", "--format=%H"], clone);
      expect(log.exitCode, log.stderr).toBe(0);
      expect(log.stderr).not.toContain("git-token-keeper");
    } finally {
      chownSync(world.stateDir, 0, 0);
    }
    return "the shim refused it with one message, no token offered; the helper answered nothing to uid 65534; mode 0700 again: ls-remote works; owned by another uid, root's clone works";
  });

  // git config --get-regexp prints a value with a newline raw: a quoted \n in a .gitmodules URL
  // used to become a second entry, here a token-bearing insteadOf rule that sent origin's fetch
  // and push to another repository, with the keeper's token. The shim reads config as data.
  scenario(group, "a .gitmodules URL holding a newline and a URL rewrite rule", "origin's fetch and push stay on origin; the rule is a value, not an entry", async () => {
    const host = origin();
    const work = join(tempDir(), "app");
    await must(world.git(["clone", "-q", "--no-recurse-submodules", world.repoUrl("acme/app"), work], tempDir()));
    const hostile = `"../docs.git\\nurl.http://x:y@${host}/acme/lib.insteadof http://${host}/acme/app"`;
    writeFileSync(join(work, ".gitmodules"), `[submodule "docs"]\n\tpath = docs\n\turl = ${hostile}\n`);
    await must(world.git(["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-am", "a .gitmodules from a pull request"], work));
    const remote = await world.git(["ls-remote", "origin", "refs/heads/main"], work);
    expect(remote.exitCode, remote.stderr).toBe(0);
    const appHead = (await world.git(["--git-dir", join(world.dir, "repos/acme/app.git"), "rev-parse", "main"], work, { shim: false })).stdout.trim();
    expect(appHead).toMatch(/^[0-9a-f]{40}$/);
    expect(remote.stdout.split("\t")[0]).toBe(appHead);
    const push = await world.git(["push", "-q", "origin", "HEAD:refs/heads/release"], work);
    expect(push.exitCode, push.stderr).toBe(0);
    const inApp = await world.git(["--git-dir", join(world.dir, "repos/acme/app.git"), "rev-parse", "-q", "--verify", "refs/heads/release"], work, { shim: false });
    const inLib = await world.git(["--git-dir", join(world.dir, "repos/acme/lib.git"), "rev-parse", "-q", "--verify", "refs/heads/release"], work, { shim: false });
    expect(inApp.exitCode).toBe(0);
    expect(inLib.exitCode).not.toBe(0);
    return "ls-remote origin listed acme/app's main; the push created release in acme/app and nothing in acme/lib";
  });
});

describe("bad config and hostile state dirs", () => {
  // Made at collection time but outside tempDir(), which the other describe's afterAll empties.
  const dir = mkdtempSync(join(tmpdir(), "gtk-config-cases-"));
  const keyFile = join(dir, "app.pem");
  writeFileSync(keyFile, generateAppKey().privateKey, { mode: 0o600 });
  const badPem = join(dir, "bad.pem");
  writeFileSync(badPem, fakePemBlock("RSA", "S3CRETKEYMATERIAL"), { mode: 0o600 });
  const ok = { name: "acme", type: "github-app", appId: 1, privateKeyFile: keyFile };

  afterAll(() => {
    removeTempDirs();
    rmSync(dir, { recursive: true, force: true });
  });

  const CASES: [string, unknown, string][] = [
    ["wrong type", { providers: [{ ...ok, appId: [1] }] }, "providers[0].appId"],
    ["missing key", { providers: [{ name: "acme", appId: 1, privateKeyFile: keyFile }] }, "providers[0].type"],
    ["unknown key", { providers: [{ ...ok, colour: "blue" }] }, "providers[0].colour: unknown key"],
    ["unknown top-level key", { providers: [ok], refreshbefore: "5m" }, "refreshbefore: unknown key"],
    ["bad duration", { providers: [ok], refreshBefore: "soon" }, "refreshBefore: 'soon' is not a duration"],
    ["bad URL", { providers: [{ ...ok, gitUrl: "github dot com" }] }, "providers[0].gitUrl: 'github dot com' is not a URL"],
    ["http:// to a remote host", { providers: [{ ...ok, apiUrl: "http://api.github.com" }] }, "providers[0].apiUrl: 'http://api.github.com' uses http://"],
    ["unreadable PEM", { providers: [{ ...ok, privateKeyFile: join(dir, "missing.pem") }] }, "providers[0].privateKeyFile: no such file"],
    ["malformed PEM", { providers: [{ ...ok, privateKeyFile: badPem }] }, "providers[0].privateKeyFile: not a PEM private key"],
    ["duplicate provider names", { providers: [ok, { ...ok, owners: ["x"] }] }, "providers[1].name: 'acme' is already used"],
    ["unknown provider type", { providers: [{ ...ok, type: "bitbucket" }] }, "providers[0].type"],
    ["no providers", { providers: [] }, "providers: must list at least one provider"],
    ["not YAML", "providers: [unclosed", "keeper.yaml"],
  ];

  scenario(group, `${CASES.length} kinds of bad config (wrong type, missing and unknown keys, bad duration and URL, unreadable and malformed PEM, duplicate names …)`, "one message per problem naming the key and the fix, exit code 2, nothing half-started, no key material echoed", async () => {
    const observed: string[] = [];
    for (const [name, config, expected] of CASES) {
      const caseDir = tempDir();
      const file = join(caseDir, "keeper.yaml");
      writeFileSync(file, typeof config === "string" ? config : JSON.stringify(config));
      const state = join(caseDir, "state");
      const r = await runCli(["run", "--config", file], { GIT_TOKEN_KEEPER_DIR: state });
      expect(r.exitCode, name).toBe(2);
      expect(r.stderr, name).toContain(expected);
      expect(r.stderr).not.toContain("S3CRETKEYMATERIAL");
      expect(r.stderr.trim().split("\n").every((l) => l.startsWith("git-token-keeper: "))).toBe(true);
      expect(() => readdirSync(state), `${name}: state dir created`).toThrow();
      observed.push(name);
    }
    return `${observed.length}/${CASES.length} exit 2 with the key named; no state dir created; no key material in any message`;
  });

  scenario(group, "state dir pre-created by another user, or replaced by a symlink (a shared /tmp attack)", "refused with the reason and the fix", async () => {
    const theirs = join(tempDir(), "theirs");
    mkdirSync(theirs, { mode: 0o700 });
    chownSync(theirs, 12345, 12345);
    const config = { providers: [{ ...ok, apiUrl: "http://127.0.0.1:1" }] };
    const a = await KeeperProcess.start({ dir: tempDir(), stateDir: theirs, config, waitReady: false });
    expect(await a.exited).toBe(1);
    expect(a.log).toContain("belongs to uid 12345");
    const base = tempDir();
    mkdirSync(join(base, "real"), { mode: 0o700 });
    symlinkSync(join(base, "real"), join(base, "link"));
    const b = await KeeperProcess.start({ dir: tempDir(), stateDir: join(base, "link"), config, waitReady: false });
    expect(await b.exited).toBe(1);
    expect(b.log).toContain("is a symlink; refusing it");
    return "exit 1: 'belongs to uid 12345, not to this user … refusing it'; exit 1: 'is a symlink; refusing it'";
  });

  scenario(group, "private key file readable by every user", "a warning naming the file and chmod o-rwx", async () => {
    const open = join(tempDir(), "open.pem");
    writeFileSync(open, generateAppKey().privateKey, { mode: 0o644 });
    const keeper = await KeeperProcess.start({ dir: tempDir(), stateDir: join(tempDir(), "state"), config: { providers: [{ ...ok, privateKeyFile: open, apiUrl: "http://127.0.0.1:1" }] }, waitReady: false });
    await keeper.waitForLog(/is open to every user \(mode 644\); run chmod o-rwx on it/);
    await keeper.stop();
    return "warn: providers[0].privateKeyFile: '…/open.pem' is open to every user (mode 644); run chmod o-rwx on it";
  });
});
