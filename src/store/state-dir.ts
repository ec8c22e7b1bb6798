import { lstatSync, mkdirSync } from "node:fs";
import { StoreError } from "../errors/keeper-error.ts";

/**
 * Creates the directory 0700 if missing, then refuses it unless it is a real directory (not
 * a symlink), owned by this user, and closed to group and others: a state dir that someone
 * else prepared (a shared /tmp attack) could read or swap tokens.
 */
export function ensurePrivateDir(path: string, uid = process.getuid?.() ?? 0): void {
  try {
    mkdirSync(path, { recursive: true, mode: 0o700 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EEXIST") {
      throw new StoreError(`cannot create state dir '${path}': ${code}`, {
        cause: error,
        hint: "set stateDir or GIT_TOKEN_KEEPER_DIR to a directory this user may create, ideally on tmpfs (/run)",
      });
    }
  }
  const stat = lstatSync(path);
  if (stat.isSymbolicLink()) {
    throw new StoreError(`state dir '${path}' is a symlink; refusing it`, {
      hint: "remove the symlink and let the daemon create the directory itself",
    });
  }
  if (!stat.isDirectory()) {
    throw new StoreError(`state dir '${path}' is not a directory`, { hint: "remove it or choose another stateDir" });
  }
  if (stat.uid !== uid) {
    throw new StoreError(`state dir '${path}' belongs to uid ${stat.uid}, not to this user (uid ${uid}); refusing it`, {
      hint: "remove it, or run the daemon as its owner",
    });
  }
  if (stat.mode & 0o077) {
    throw new StoreError(`state dir '${path}' is open to group or others (mode ${(stat.mode & 0o777).toString(8)})`, {
      hint: `run chmod 700 '${path}'`,
    });
  }
}
