import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { scanTree } from "./secrets-audit.ts";

const made: string[] = [];

/** A private temporary folder, removed by removeTempDirs() (call it in afterAll). */
export function tempDir(prefix = "gtk-test-"): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  made.push(dir);
  return dir;
}

/** Removes the folders, after the secrets audit has searched them for minted tokens. */
export function removeTempDirs(): void {
  for (const dir of made.splice(0)) {
    scanTree(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}
