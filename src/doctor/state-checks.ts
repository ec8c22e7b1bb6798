import { lstatSync, statfsSync } from "node:fs";
import { daemonDown, readStatusFile } from "../store/daemon-status.ts";
import type { CheckResult, DoctorContext } from "./doctor-check.ts";

// statfs f_type of the file systems that keep files in memory only.
const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;

/** The state dir: present, private (0700, or 0750 for the shared-group layout), on tmpfs. */
export function checkStateDir(ctx: DoctorContext): CheckResult[] {
  let stat;
  try {
    stat = lstatSync(ctx.stateDir);
  } catch {
    return [{ level: "fail", what: `state dir ${ctx.stateDir} does not exist`, fix: "start the daemon (git-token-keeper run), or set GIT_TOKEN_KEEPER_DIR to the daemon's state dir" }];
  }
  const results: CheckResult[] = [];
  const mode = stat.mode & 0o777;
  if (stat.isSymbolicLink() || !stat.isDirectory()) {
    results.push({ level: "fail", what: `state dir ${ctx.stateDir} is not a plain directory`, fix: "remove it and restart the daemon" });
  } else if (mode & 0o007) {
    results.push({ level: "fail", what: `state dir ${ctx.stateDir} is open to others (mode ${mode.toString(8)})`, fix: `chmod 700 '${ctx.stateDir}' (or 750 with stateGroup)` });
  } else {
    results.push({ level: "ok", what: `state dir ${ctx.stateDir} is private (mode ${mode.toString(8)})` });
  }
  try {
    const type = statfsSync(ctx.stateDir).type;
    results.push(
      type === TMPFS_MAGIC || type === RAMFS_MAGIC
        ? { level: "ok", what: "state dir is on tmpfs: tokens never touch a disk" }
        : { level: "warn", what: "state dir is not on tmpfs: tokens are written to disk", fix: "use a folder under /run or $XDG_RUNTIME_DIR (or an emptyDir with medium: Memory)" },
    );
  } catch {
    // statfs is informative only.
  }
  return results;
}

/** The daemon is alive, and no provider is failing to mint. */
export function checkDaemon(ctx: DoctorContext): CheckResult[] {
  const status = readStatusFile(ctx.stateDir);
  const down = daemonDown(status, ctx.stateDir);
  if (down || !status) return [{ level: "fail", what: down ?? "no daemon", fix: "start it: git-token-keeper run (or systemctl start git-token-keeper)" }];
  const results: CheckResult[] = [{ level: "ok", what: `daemon alive (pid ${status.pid})` }];
  for (const p of status.providers.filter((p) => p.error)) {
    results.push({ level: "fail", what: `provider ${p.name} cannot find its owners: ${p.error}`, fix: "see the hint in the message; git-token-keeper status" });
  }
  for (const t of status.tokens) {
    if (t.failing) {
      results.push({ level: "fail", what: `provider ${t.provider} cannot mint for ${t.owner}: ${t.lastError}`, fix: "see the hint in the message; the current token serves until it expires" });
    }
  }
  const fresh = status.tokens.filter((t) => !t.failing && t.expiresAt);
  if (fresh.length > 0 && results.length === 1) results.push({ level: "ok", what: `every provider mints: ${fresh.length} token(s) fresh` });
  if (status.tokens.length === 0 && results.length === 1) results.push({ level: "ok", what: "no tokens yet: owners are minted on first use" });
  return results;
}
