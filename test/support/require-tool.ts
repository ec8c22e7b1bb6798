import { execFileSync } from "node:child_process";

/** How `.ci/run` gets each tool a test may need, for the line a skip prints. */
const HOW_CI_GETS_IT: Record<string, string> = {
  shellcheck: "Debian package shellcheck",
  busybox: "Debian package busybox",
  dash: "Debian package dash",
  bash: "Debian package bash",
  python3: "Debian package python3",
  openssl: "Debian package openssl",
  "systemd-analyze": "Debian package systemd",
  "systemd-notify": "Debian package systemd",
  unshare: "Debian package util-linux",
  docker: "Debian package docker.io; .ci/run starts dockerd and builds the base image",
  debootstrap: "Debian package debootstrap",
  "git-lfs": "Debian package git-lfs",
  gh: "Debian package gh",
  faketime: "Debian package faketime",
};

const said = new Set<string>();

/** Where a command is on PATH, or undefined. */
export function toolPath(name: string): string | undefined {
  try {
    return execFileSync("sh", ["-c", 'command -v "$1"', "sh", name], { encoding: "utf8" }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether a tool a test needs is here. Outside CI a missing one is a skip, said once in one
 * line naming the tool and how `.ci/run` gets it; with CI set it is a failure, so the suite
 * cannot silently shrink.
 */
export function haveTool(name: string, why = `'${name}' is not on PATH`): boolean {
  if (toolPath(name)) return true;
  skipBecause(`${why}; .ci/run installs it (${HOW_CI_GETS_IT[name] ?? name})`);
  return false;
}

/** Records a skip: one line on stderr outside CI, an error in CI. Returns the line. */
export function skipBecause(line: string): string {
  if (inCi()) throw new Error(`CI must not skip: ${line}`);
  if (!said.has(line)) {
    said.add(line);
    process.stderr.write(`skipped: ${line}\n`);
  }
  return line;
}

/** CI=true (what .ci/run runs under) turns every skip into a failure. */
export function inCi(): boolean {
  return Boolean(process.env.CI) && process.env.CI !== "false" && process.env.CI !== "0";
}
