import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { KeeperProcess } from "../support/keeper-process.ts";
import { removeTempDirs } from "../support/temp-dir.ts";
import { World } from "../support/world.ts";
import { fileGroup, scenario } from "./scenario.ts";

const group = `a member of the state group against requests/ (${fileGroup(import.meta.url)})`;

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

  scenario(group, "`mkdir requests/.x.tmp` before the daemon starts", "the daemon starts (clean-up never throws); the empty folder is removed by the sweep", async () => {
    expect(keeper.child.exitCode).toBeNull();
    await sleep(2_500);
    expect(existsSync(join(requests(), ".x.tmp"))).toBe(false);
    return "daemon running; the folder removed within one sweep";
  });

  scenario(group, "removing or renaming another member's request", "refused by the kernel: requests/ is sticky (1770)", async () => {
    expect(statSync(requests()).mode & 0o1777).toBe(0o1770);
    return `requests/ mode ${(statSync(requests()).mode & 0o1777).toString(8)}`;
  });

  scenario(group, "a dot file, a FIFO, a symlink to a member's file, a 1 MB file, an empty folder, owners `..` and `.` under request names", "each removed without being opened, followed or walked into, logged once with its kind and uid; the daemon keeps serving", async () => {
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
    return "requests/ empty within two sweeps; the link's target unchanged; daemon running";
  });

  scenario(group, "planting an answer (or a FIFO) where a requester reads why its request failed", "impossible: answers live in answers/ (0750), which only the daemon writes; request names are random and created exclusively", async () => {
    const answers = join(world.stateDir, "answers");
    expect(statSync(answers).mode & 0o777).toBe(0o750);
    const r = await asMember(`: > ${answers}/mint+test-app+acme+0+0123456789abcdef`);
    expect(r.exitCode).not.toBe(0);
    return `creating a file in answers/ as a member: exit ${r.exitCode}`;
  });

  scenario(group, "20 refresh requests from a member within a second", "at most one re-mint per provider per remintInterval; the rest answered as refused, logged and counted", async () => {
    const before = world.github.mintsFor("acme");
    const r = await asMember(`cd ${requests()} && for i in $(seq 20); do : > "refresh+test-app++0+flood$i"; sleep 0.05; done`);
    expect(r.exitCode, r.stderr).toBe(0);
    await sleep(3_000);
    expect(world.github.mintsFor("acme") - before).toBeLessThanOrEqual(1);
    expect(keeper.log).toContain("refused a refresh request: too soon after the last one");
    return `${world.github.mintsFor("acme") - before} re-mint of acme for 20 requests`;
  });
});
