import { chmodSync, copyFileSync, mkdirSync, readdirSync, renameSync } from "node:fs";
import { join, resolve } from "node:path";
import { shimDir } from "./shim-path-command.ts";

/** The files that make up the shim: plain sh, and the awk program the network path runs. */
export function shimFiles(): string[] {
  return readdirSync(shimDir()).filter((n) => n === "git" || n === "gh" || n.startsWith("git-") || n.endsWith(".sh") || n.endsWith(".awk"));
}

/** Copies the shim and helper into `dir` (each file replaced whole); returns the files written. */
export function installShim(dir: string): string[] {
  const target = resolve(dir);
  mkdirSync(target, { recursive: true, mode: 0o755 });
  const written: string[] = [];
  for (const name of shimFiles()) {
    const temp = join(target, `.${name}.${process.pid}.tmp`);
    copyFileSync(join(shimDir(), name), temp);
    chmodSync(temp, name.endsWith(".sh") ? 0o644 : 0o755);
    renameSync(temp, join(target, name));
    written.push(join(target, name));
  }
  return written;
}

/** `install-shim DIR`: for build containers that share a volume with the keeper's container. */
export function installShimCommand(dir: string | undefined): number {
  if (!dir) {
    process.stderr.write("git-token-keeper: install-shim needs the folder to copy the shim into, e.g. install-shim /shared/shim\n");
    return 2;
  }
  const files = installShim(dir);
  process.stdout.write(`installed ${files.length} files in ${resolve(dir)}; put it first on PATH: PATH="${resolve(dir)}:$PATH"\n`);
  return 0;
}
