import { randomBytes } from "node:crypto";
import { closeSync, fchmodSync, fchownSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { StoreError } from "../errors/keeper-error.ts";

// The rename is durable only once the directory is synced (a refresh token GitLab already
// replaced must survive a power cut). Some file systems refuse fsync on a directory: no harm.
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // EINVAL/EISDIR/EACCES on some file systems: the rename stands all the same.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Writes a file whole or not at all: a temp file (0600, created exclusively) in the same
 * directory, synced, then renamed over the target, and the directory synced. A reader sees the
 * old file or the new one.
 */
export function writeFileAtomic(path: string, data: string, mode = 0o600, gid?: number): void {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(temp, "wx", mode);
    // The shared group of the group layout, whatever this process's primary group is; and the
    // mode whatever the umask took from it (under umask 077 a 0640 file would be 0600, and the
    // group's helper would answer nothing).
    if (gid !== undefined) fchownSync(fd, -1, gid);
    fchmodSync(fd, mode);
    writeSync(fd, data);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, path);
    syncDirectory(dirname(path));
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(temp);
    } catch {
      // Nothing was left behind.
    }
    const code = (error as NodeJS.ErrnoException).code;
    const hint =
      code === "ENOSPC"
        ? "the state dir's file system is full; free space or give the tmpfs more room"
        : code === "EROFS" || code === "EACCES" || code === "EPERM"
          ? "the state dir is not writable; check its mount and permissions"
          : code === "ENOENT"
            ? "the state dir was removed; the daemon recreates it on the next write"
            : undefined;
    throw new StoreError(`cannot write '${path}': ${code ?? String(error)}`, { cause: error, hint });
  }
}
