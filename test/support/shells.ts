import { chmodSync, copyFileSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { SHIM_DIR } from "./run-git.ts";
import { tempDir } from "./temp-dir.ts";

/** The shells the shim must work under, with the interpreter line that runs a script in each. */
export const SHELLS = {
  dash: "#!/bin/dash",
  bash: "#!/bin/bash",
  busybox: "#!/bin/busybox sh",
} as const;
export type ShellName = keyof typeof SHELLS;

/**
 * Shells present here. CI installs all of them; a missing one there is a failure, not a skip,
 * so the shell matrix cannot silently shrink.
 */
export function shellsToTest(): ShellName[] {
  const present = (Object.keys(SHELLS) as ShellName[]).filter((s) => existsSync(SHELLS[s].slice(2).split(" ")[0] as string));
  if (process.env.CI && present.length !== Object.keys(SHELLS).length) {
    throw new Error(`CI must have dash, bash and busybox; found only ${present.join(", ")}`);
  }
  return present;
}

/** A copy of shim/ whose scripts run under the given shell. */
export function shimCopyFor(shell: ShellName): string {
  const dir = tempDir(`gtk-shim-${shell}-`);
  for (const name of readdirSync(SHIM_DIR)) {
    const target = join(dir, name);
    copyFileSync(join(SHIM_DIR, name), target);
    const text = readFileSync(target, "utf8");
    if (text.startsWith("#!")) {
      writeFileSync(target, `${SHELLS[shell]}\n${text.slice(text.indexOf("\n") + 1)}`);
      chmodSync(target, 0o755);
    }
  }
  return dir;
}
