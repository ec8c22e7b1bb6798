import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeeperProcess } from "../support/keeper-process.ts";
import { removeTempDirs } from "../support/temp-dir.ts";
import { World } from "../support/world.ts";

// Debian's nobody and nogroup stand in for a member of the keeper's shared group.
const MEMBER_UID = 65534;
const SHARED_GID = 65534;

/**
 * Everyone who shares the state dir is a possible adversary. A member of the state group, as
 * itself, tries what docs/reliability.md lists for requests/: nothing it does may stop, slow or
 * misdirect the daemon or another member's git.
 */
describe.skipIf(process.getuid?.() !== 0)("a member of the state group against requests/", () => {
  let world: World;
  let keeper: KeeperProcess;
  const requests = () => join(world.stateDir, "requests");
  const asMember = (script: string) => execa("sh", ["-c", script], { uid: MEMBER_UID, gid: SHARED_GID, reject: false, cwd: "/" });
  const config = () => ({ stateGroup: SHARED_GID, refreshBefore: "10m", retryMin: "200ms", retryMax: "2s", remintInterval: "5s", providers: [world.providerConfig()] });

  beforeAll(async () => {
    world = await World.create();
    chmodSync(world.dir, 0o755);
    // Before the daemon starts: a folder named like a leftover temp file in requests/.
    mkdirSync(join(world.stateDir, "requests", ".x.tmp"), { recursive: true });
    keeper = await KeeperProcess.start({ dir: world.dir, stateDir: world.stateDir, config: config() });
  });

  afterAll(async () => {
    await keeper?.stop();
    await world.close();
    removeTempDirs();
  });

  it("a folder named like a leftover temp file does not stop the daemon from starting, and an empty one is removed", async () => {
    expect(keeper.child.exitCode).toBeNull();
    await sleep(2_500);
    expect(existsSync(join(requests(), ".x.tmp"))).toBe(false);
  });

  it("requests/ is sticky: a member can remove or rename only its own requests", () => {
    expect(statSync(requests()).mode & 0o1777).toBe(0o1770);
  });

  it("dot files, fifos, links, large files and odd names are removed without being followed or opened; the daemon keeps serving", async () => {
    const victim = "/tmp/gtk-member-victim";
    await asMember(`printf 'keep me\\n' > ${victim}`);
    const r = await asMember(
      [
        `cd ${requests()}`,
        ": > .dotfile",
        "mkfifo mint+test-app+acme+0+fifo",
        `ln -s ${victim} mint+test-app+acme+0+link`,
        "head -c 1048576 /dev/zero > mint+test-app+acme+0+big",
        "mkdir mint+test-app+acme+0+emptydir",
        ": > 'mint+test-app+..+0+climb' ; : > 'mint+test-app+.+0+dot'",
      ].join(" && "),
    );
    expect(r.exitCode, r.stderr).toBe(0);
    await sleep(4_500);
    expect(readdirSync(requests())).toEqual([]);
    expect(readFileSync(victim, "utf8")).toBe("keep me\n");
    expect(keeper.child.exitCode).toBeNull();
    expect(keeper.log).toContain("removed an entry in requests/ that is not a request");
  });

  it("a member cannot write the daemon's answers, which the helper reads", async () => {
    const answers = join(world.stateDir, "answers");
    expect(statSync(answers).mode & 0o777).toBe(0o750);
    const r = await asMember(`: > ${answers}/mint+test-app+acme+0+0123456789abcdef`);
    expect(r.exitCode).not.toBe(0);
  });

  it("a flood of refresh requests from a member re-mints each provider at most once per remintInterval", async () => {
    const before = world.github.mintsFor("acme");
    const r = await asMember(`cd ${requests()} && for i in $(seq 20); do : > "refresh+test-app++0+flood$i"; sleep 0.05; done`);
    expect(r.exitCode, r.stderr).toBe(0);
    await sleep(3_000);
    expect(world.github.mintsFor("acme") - before).toBeLessThanOrEqual(1);
    expect(keeper.log).toContain("refused a refresh request: too soon after the last one");
    // The keeper's own user (the CLI run as it) is not limited.
  });
});
