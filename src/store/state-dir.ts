import { chmodSync, chownSync, lstatSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { StoreError } from "../errors/keeper-error.ts";

/**
 * Who may read the state dir besides its owner. `private`: nobody (0700, files 0600). `group`:
 * members of one group read tokens (0750, files 0640) and write requests (1770), the layout for
 * a keeper that runs as its own user beside a CI runner's user.
 */
export interface DirAccess {
  uid: number;
  /** The shared group's id, for the group layout. */
  gid?: number | undefined;
  /** Whether the group may create files here (the requests folder). */
  groupWrite?: boolean;
}

export function currentAccess(gid?: number): DirAccess {
  return { uid: process.getuid?.() ?? 0, gid };
}

/**
 * Creates the directory if missing, then refuses it unless it is a real directory (not a
 * symlink), owned by this user, and closed to others (and to the group, unless it is the
 * configured shared group): a state dir that someone else prepared (a shared /tmp attack)
 * could read or swap tokens.
 */
export function ensurePrivateDir(path: string, access: DirAccess | number = currentAccess()): void {
  const { uid, gid, groupWrite } = typeof access === "number" ? { uid: access, gid: undefined, groupWrite: false } : access;
  // A folder the group writes to is sticky: a member can remove or rename only its own entries.
  const wanted = gid === undefined ? 0o700 : groupWrite ? 0o1770 : 0o750;
  let created = false;
  try {
    mkdirSync(path, { recursive: true, mode: 0o700 });
    created = true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EEXIST") {
      throw new StoreError(`cannot create state dir '${path}': ${code}`, {
        cause: error,
        hint:
          code === "EROFS" || code === "ENOENT"
            ? `mount a tmpfs where it goes, writable by this user (docker run --tmpfs ${dirname(path)}; Kubernetes: an emptyDir with medium: Memory)`
            : "set stateDir or GIT_TOKEN_KEEPER_DIR to a directory this user may create, ideally on tmpfs (/run)",
      });
    }
  }
  let stat = lstatSync(path);
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
      hint: `give the daemon a folder inside it, which it creates itself (GIT_TOKEN_KEEPER_DIR=${path}/state), or run the daemon as its owner`,
    });
  }
  if (gid !== undefined && (created || stat.gid !== gid || (stat.mode & 0o1777) !== wanted)) {
    // Our own directory: give it the shared group's layout (systemd's RuntimeDirectory= may
    // have made it 0755 or left the group as the user's).
    try {
      if (stat.gid !== gid) chownSync(path, uid, gid);
      chmodSync(path, wanted);
    } catch (error) {
      throw new StoreError(`cannot give state dir '${path}' to group ${gid}: ${(error as NodeJS.ErrnoException).code}`, {
        cause: error,
        hint: "run the daemon with that group as its primary or supplementary group (systemd: Group= or SupplementaryGroups=)",
      });
    }
    stat = lstatSync(path);
  }
  const mode = stat.mode & 0o777;
  const allowed = gid === undefined ? 0o700 : wanted & 0o777;
  if (mode & ~allowed) {
    throw new StoreError(`state dir '${path}' is open to ${gid === undefined ? "group or others" : "others"} (mode ${mode.toString(8)})`, {
      hint: gid === undefined ? `run chmod 700 '${path}', or set stateGroup to share it with one group` : `run chmod ${wanted.toString(8)} '${path}'`,
    });
  }
}
