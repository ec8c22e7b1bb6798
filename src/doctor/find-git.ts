import { accessSync, constants, existsSync, statSync } from "node:fs";
import { join } from "node:path";

/** The shim is recognised the way the shim itself recognises one: the library beside it. */
export function isShimDir(dir: string): boolean {
  return existsSync(join(dir, "token-keeper-lib.sh"));
}

/** Every executable `git` on PATH, in order. */
export function gitsOnPath(path: string | undefined): string[] {
  return (path ?? "").split(":").flatMap((dir) => {
    const candidate = join(dir || ".", "git");
    try {
      if (!statSync(candidate).isFile()) return [];
      accessSync(candidate, constants.X_OK);
      return [candidate];
    } catch {
      return [];
    }
  });
}
