import { fileURLToPath } from "node:url";

/** The folder holding `git` and `git-credential-token-keeper`, for `PATH="$(git-token-keeper shim-path):$PATH"`. */
export function shimDir(): string {
  // src/cli and dist/cli both sit two levels below the package root.
  return fileURLToPath(new URL("../../shim", import.meta.url));
}

export function shimPathCommand(): number {
  process.stdout.write(`${shimDir()}\n`);
  return 0;
}
