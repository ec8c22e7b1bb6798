import { execa } from "execa";
import type { DoctorContext } from "./doctor-check.ts";

/**
 * `git config -z --get-regexp REGEXP` as git reads it for the build (its config files in order,
 * the build's environment), without the shim: `{key, value}` pairs, the value empty for a key set
 * without one. Read as data: a value holding a newline stays one value. `file` reads that one
 * file instead (with its includes).
 */
export async function gitConfigEntries(ctx: DoctorContext, git: string, regexp: string, file?: string): Promise<{ key: string; value: string }[]> {
  const where = file === undefined ? [] : ["-f", file, "--includes"];
  const r = await execa(git, ["config", "-z", ...where, "--get-regexp", regexp], { cwd: ctx.cwd, reject: false, stripFinalNewline: false, env: { ...ctx.env, GIT_TOKEN_KEEPER_DISABLE: "1" } });
  return String(r.stdout)
    .split("\0")
    .filter(Boolean)
    .map((record) => {
      const newline = record.indexOf("\n");
      return newline < 0 ? { key: record, value: "" } : { key: record.slice(0, newline), value: record.slice(newline + 1) };
    });
}
