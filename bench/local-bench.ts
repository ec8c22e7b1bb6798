import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { SHIM_DIR } from "../test/support/run-git.ts";
import { makeFloors, makeRepos, makeState, realGit } from "./fixtures.ts";
import { timeAlternating, type Timed, type Variant } from "./timing.ts";

export interface LocalResults {
  revParse: Timed[];
  status: Timed[];
  helper: Timed[];
}

/** What every git call pays (1) and what a credential lookup pays (2). */
export async function benchLocal(dir: string, runs: { revParse: number; status: number; helper: number }): Promise<LocalResults> {
  const { small, large } = makeRepos(dir, 5_000);
  const floors = makeFloors(dir);
  const state1 = makeState(dir, 1, 1);
  const state50 = makeState(dir, 50, 1);
  const state50hosts = makeState(dir, 50, 50);
  const git = realGit();
  // As installed: the shim's folder (the floor's, for the floor) first on PATH.
  const env = (state?: string, first?: string) => ({
    PATH: first ? `${first}:${process.env.PATH}` : process.env.PATH,
    HOME: dir,
    GIT_CONFIG_NOSYSTEM: "1",
    ...(state ? { GIT_TOKEN_KEEPER_DIR: state } : {}),
  });
  const floorDir = dirname(floors.gitFloor);
  const variants = (cwd: string, args: string[]) => [
    { name: "plain git", command: git, args, options: { cwd, env: env() } },
    { name: "floor: exec git \"$@\"", command: floors.gitFloor, args, options: { cwd, env: env(undefined, floorDir) } },
    { name: "shim, 1 provider", command: join(SHIM_DIR, "git"), args, options: { cwd, env: env(state1, SHIM_DIR) } },
    { name: "shim, 50 providers, 1 host", command: join(SHIM_DIR, "git"), args, options: { cwd, env: env(state50, SHIM_DIR) } },
    { name: "shim, 50 providers, 50 hosts", command: join(SHIM_DIR, "git"), args, options: { cwd, env: env(state50hosts, SHIM_DIR) } },
  ];
  const revParse = await timeAlternating(variants(small, ["rev-parse", "HEAD"]), runs.revParse);
  const status = await timeAlternating(variants(large, ["status", "--porcelain"]), runs.status, 5);

  const request = "protocol=https\nhost=github.com\npath=acme/app.git\n\n";
  const helpers: Variant[] = [
    { name: "keeper helper, 1 provider", command: join(SHIM_DIR, "git-credential-token-keeper"), args: ["get"], options: { input: request, env: env(state1) } },
    { name: "keeper helper, 50 providers", command: join(SHIM_DIR, "git-credential-token-keeper"), args: ["get"], options: { input: request, env: env(state50) } },
    { name: "floor: sh helper printing a file", command: floors.helperFloor, args: ["get"], options: { input: request, env: env() } },
  ];
  // gh's helper where it is installed (Debian's gh); without a login it answers nothing.
  const gh = ["/usr/bin/gh", "/usr/local/bin/gh"].find((p) => existsSync(p));
  if (gh) helpers.push({ name: "gh auth git-credential", command: gh, args: ["auth", "git-credential", "get"], options: { input: request, env: env() }, allowFailure: true });
  const helper = await timeAlternating(helpers, runs.helper);
  return { revParse, status, helper };
}
