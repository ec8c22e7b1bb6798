import { execa } from "execa";
import type { DoctorContext } from "./doctor-check.ts";

/**
 * `git config --get-regexp REGEXP` as git reads it for the build (its config files in order, the
 * build's environment), without the shim: `{key, value}` pairs, the value empty for a key set
 * without one.
 */
export async function gitConfigEntries(ctx: DoctorContext, git: string, regexp: string): Promise<{ key: string; value: string }[]> {
  const r = await execa(git, ["config", "--get-regexp", regexp], { cwd: ctx.cwd, reject: false, env: { ...ctx.env, GIT_TOKEN_KEEPER_DISABLE: "1" } });
  return String(r.stdout)
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const space = line.indexOf(" ");
      return space < 0 ? { key: line, value: "" } : { key: line.slice(0, space), value: line.slice(space + 1) };
    });
}
