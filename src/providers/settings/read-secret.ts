import { closeSync, constants, existsSync, fstatSync, openSync, readSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { expandEnv } from "./expand-env.ts";

/** Keys, secrets, certificates and tokens are kilobytes: anything larger is not one. */
export const MAX_SECRET_BYTES = 1_000_000;

/**
 * Reads a file that holds a secret (a key, a token, a certificate): a regular file of at most
 * MAX_SECRET_BYTES, opened without blocking, so that a FIFO (which would block the daemon until
 * someone writes to it), a device (/dev/zero reads without end) or a socket is refused with a
 * message instead. Throws an Error whose message says what is wrong.
 */
export function readSecretFile(file: string, encoding: "utf8"): string;
export function readSecretFile(file: string): Buffer;
export function readSecretFile(file: string, encoding?: "utf8"): string | Buffer {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      const kind = stat.isFIFO() ? "a FIFO" : stat.isCharacterDevice() || stat.isBlockDevice() ? "a device" : stat.isSocket() ? "a socket" : stat.isDirectory() ? "a directory" : "not a regular file";
      throw Object.assign(new Error(`'${file}' is ${kind}, not a regular file; point the setting at the file that holds the secret`), { code: "ENOTREG" });
    }
    if (stat.size > MAX_SECRET_BYTES) {
      throw Object.assign(new Error(`'${file}' is ${stat.size} bytes, more than a secret's ${MAX_SECRET_BYTES}; is it the right file?`), { code: "EFBIG" });
    }
    // One byte more than allowed: a file that grew since fstat is refused, not read to its end.
    const buffer = Buffer.alloc(Math.min(MAX_SECRET_BYTES + 1, stat.size + 4096));
    let length = 0;
    for (let n; length < buffer.length && (n = readSync(fd, buffer, length, buffer.length - length, null)) > 0; ) length += n;
    if (length > MAX_SECRET_BYTES) throw Object.assign(new Error(`'${file}' is more than ${MAX_SECRET_BYTES} bytes; is it the right file?`), { code: "EFBIG" });
    const data = buffer.subarray(0, length);
    return encoding ? data.toString(encoding) : Buffer.from(data);
  } finally {
    closeSync(fd);
  }
}

/**
 * Checks a file the daemon will read (a key, a secret, a token): expands `${VAR}`, and reports
 * a missing or unreadable file as a problem naming the key. Returns the expanded path.
 */
export function checkReadableFile(file: string, key: string, env: NodeJS.ProcessEnv, problems: string[], warnings?: string[]): string | undefined {
  const expanded = expandEnv(file, env);
  if (expanded.missing.length) {
    problems.push(`${key}: '${file}' uses ${expanded.missing.map((n) => `\${${n}}`).join(", ")}, which is not set; under systemd use LoadCredential=, elsewhere write the path`);
    return undefined;
  }
  try {
    readSecretFile(expanded.value);
    const risk = exposure(statSync(expanded.value));
    if (warnings && risk) warnings.push(`${key}: '${expanded.value}' ${risk}`);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied (the daemon's user must be able to read it)" : code === "EISDIR" ? "is a directory" : undefined;
    problems.push(why ? `${key}: ${why} '${expanded.value}'` : `${key}: ${(error as Error).message}`);
    return undefined;
  }
  return expanded.value;
}

/** A file the daemon will write later (a rotated token): its folder must exist. */
export function checkWritableLocation(file: string, key: string, env: NodeJS.ProcessEnv, problems: string[]): string | undefined {
  const expanded = expandEnv(file, env);
  if (expanded.missing.length) {
    problems.push(`${key}: '${file}' uses ${expanded.missing.map((n) => `\${${n}}`).join(", ")}, which is not set`);
    return undefined;
  }
  if (!expanded.value.startsWith("/")) {
    problems.push(`${key}: '${file}' must be an absolute path`);
    return undefined;
  }
  if (!existsSync(dirname(expanded.value))) {
    problems.push(`${key}: folder '${dirname(expanded.value)}' does not exist; create it (0700, owned by the daemon's user)`);
    return undefined;
  }
  return expanded.value;
}

/**
 * Who besides the daemon can read a secret file, when that is a real risk: anyone (others'
 * bits), or a group the daemon is not in. A group the daemon is in is how a non-root keeper
 * reads a root-owned key (a Kubernetes Secret with defaultMode 0440 and fsGroup, a 0640 key
 * with the keeper's group): that is the layout working, not a leak.
 */
export function exposure(stat: { mode: number; gid: number }, groups: readonly number[] = daemonGroups()): string | undefined {
  const mode = (stat.mode & 0o777).toString(8);
  if (stat.mode & 0o007) return `is open to every user (mode ${mode}); run chmod o-rwx on it`;
  if (stat.mode & 0o070 && !groups.includes(stat.gid)) {
    return `is readable by group ${stat.gid}, which the daemon is not in (mode ${mode}); run chmod 600 on it, or chgrp it to the daemon's group`;
  }
  return undefined;
}

function daemonGroups(): number[] {
  return [process.getgid?.() ?? -1, ...(process.getgroups?.() ?? [])];
}
