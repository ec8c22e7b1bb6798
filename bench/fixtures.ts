import { uptime } from "node:os";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatTokenRecord } from "../src/store/token-file.ts";
import { originsText, type Route } from "../src/store/token-store.ts";

export function realGit(): string {
  return execFileSync("sh", ["-c", "command -v git"], { encoding: "utf8" }).trim();
}

function git(cwd: string, ...args: string[]): void {
  execFileSync("git", args, { cwd, stdio: "ignore", env: { ...process.env, GIT_AUTHOR_NAME: "b", GIT_AUTHOR_EMAIL: "b@x", GIT_COMMITTER_NAME: "b", GIT_COMMITTER_EMAIL: "b@x" } });
}

/** A one-commit repository, and one with `files` files, for local commands. */
export function makeRepos(dir: string, files: number): { small: string; large: string } {
  const small = join(dir, "small");
  mkdirSync(small);
  git(small, "init", "-q");
  git(small, "commit", "-q", "--allow-empty", "-m", "x");
  const large = join(dir, "large");
  mkdirSync(large);
  git(large, "init", "-q");
  for (let d = 0; d < files / 100; d++) {
    const sub = join(large, `d${d}`);
    mkdirSync(sub);
    for (let f = 0; f < 100; f++) writeFileSync(join(sub, `f${f}.txt`), `${d}-${f}\n`);
  }
  git(large, "add", ".");
  git(large, "commit", "-q", "-m", "files");
  git(large, "status", "--porcelain");
  return { small, large };
}

/** The floors: a one-line sh git shim, and a minimal sh credential helper that prints a file. */
export function makeFloors(dir: string): { gitFloor: string; helperFloor: string; answer: string } {
  const bin = join(dir, "floor");
  mkdirSync(bin);
  const gitFloor = join(bin, "git");
  writeFileSync(gitFloor, `#!/bin/sh\nexec ${realGit()} "$@"\n`);
  chmodSync(gitFloor, 0o755);
  const answer = join(dir, "answer");
  writeFileSync(answer, `username=x-access-token\npassword=${["ghs", "floor".repeat(7)].join("_")}\n`);
  const helperFloor = join(bin, "git-credential-floor");
  writeFileSync(helperFloor, `#!/bin/sh\ncat ${answer}\n`);
  chmodSync(helperFloor, 0o755);
  return { gitFloor, helperFloor, answer };
}

/** A state dir as the daemon leaves it, with `providers` providers on `hosts` hosts. */
export function makeState(dir: string, providers: number, hosts: number): string {
  const state = join(dir, `state-${providers}-${hosts}`);
  mkdirSync(join(state, "requests"), { recursive: true, mode: 0o700 });
  const now = Math.floor(Date.now() / 1000);
  const routes: string[] = [];
  for (let i = 0; i < providers; i++) {
    const origin = hosts === 1 ? "https://github.com" : `https://git${i % hosts}.example`;
    const owner = i === 0 ? "acme" : `org${i}`;
    routes.push(`${origin} p${i} / owner ${owner}`);
    mkdirSync(join(state, "tokens", `p${i}`), { recursive: true });
    writeFileSync(join(state, "tokens", `p${i}`, owner), formatTokenRecord({ token: `ghs_bench${i}${"x".repeat(40)}`, username: "x-access-token", expires: now + 3600, refreshAt: now + 3000, mintedAt: now, serial: 1 }));
  }
  writeFileSync(join(state, "routes"), `${routes.join("\n")}\n`);
  // As the daemon writes it: one line per host, the owners' prefixes (the whole host past 16).
  const served: Route[] = routes.map((r) => {
    const [origin = "", provider = "", pathPrefix = "/", , owner = ""] = r.split(" ");
    return { origin, provider, pathPrefix, perOwner: true, owners: [owner] };
  });
  writeFileSync(join(state, "origins"), originsText(served));
  writeFileSync(join(state, "daemon.pid"), `${process.pid}\n`);
  // A daemon that beats all through the bench: the heartbeat stays fresh for the next hour.
  writeFileSync(join(state, "heartbeat"), `${now + 3600} ${new Date((now + 3600) * 1000).toISOString()} ${Math.round(Date.now() / 1000 - uptime())}\n`);
  return state;
}
