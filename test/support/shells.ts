import { chmodSync, copyFileSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { haveTool, toolPath } from "./require-tool.ts";
import { SHIM_DIR } from "./run-git.ts";
import { tempDir } from "./temp-dir.ts";

/** The shells the shim must work under: the command, and what follows it on the interpreter line. */
const SHELLS = {
  dash: "",
  bash: "",
  busybox: " sh",
} as const;
export type ShellName = keyof typeof SHELLS;

/**
 * Shells present here. CI installs all of them; a missing one there is a failure, not a skip
 * (haveTool), so the shell matrix cannot silently shrink.
 */
export function shellsToTest(): ShellName[] {
  return (Object.keys(SHELLS) as ShellName[]).filter((s) => haveTool(s, `the ${s} shell is not installed, so the shim is not tested under it`));
}

/** A copy of shim/ whose scripts run under the given shell. */
export function shimCopyFor(shell: ShellName): string {
  const dir = tempDir(`gtk-shim-${shell}-`);
  for (const name of readdirSync(SHIM_DIR)) {
    const target = join(dir, name);
    copyFileSync(join(SHIM_DIR, name), target);
    const text = readFileSync(target, "utf8");
    if (text.startsWith("#!")) {
      writeFileSync(target, `#!${toolPath(shell)}${SHELLS[shell]}\n${text.slice(text.indexOf("\n") + 1)}`);
      chmodSync(target, 0o755);
    }
  }
  return dir;
}
