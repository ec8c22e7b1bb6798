import type { z } from "zod";

/** `providers[0].privateKeyFile` from zod's path array. */
export function keyPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out || "(top level)";
}

function describeInput(input: unknown): string {
  if (input === undefined) return "nothing";
  if (input === null) return "null";
  if (Array.isArray(input)) return "a list";
  if (typeof input === "object") return "a mapping";
  return `${typeof input} ${JSON.stringify(input)}`;
}

/** One line per problem, each naming the key and what to write instead. */
export function formatIssues(issues: readonly z.core.$ZodIssue[], knownKeys: (path: readonly PropertyKey[]) => string[]): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    const where = keyPath(issue.path);
    switch (issue.code) {
      case "unrecognized_keys":
        for (const key of issue.keys) {
          const known = knownKeys(issue.path);
          lines.push(
            `${keyPath([...issue.path, key])}: unknown key; remove it or fix its spelling${known.length ? ` (known keys: ${known.join(", ")})` : ""}`,
          );
        }
        break;
      case "invalid_type":
        lines.push(
          issue.input === undefined
            ? `${where}: missing; add it (${issue.expected} expected)`
            : `${where}: expected ${issue.expected}, got ${describeInput(issue.input)}`,
        );
        break;
      case "invalid_union":
        if ("discriminator" in issue && issue.discriminator) {
          lines.push(`${where}: unknown ${String(issue.discriminator)}; known types: ${knownKeys(["type"]).join(", ")}`);
        } else {
          lines.push(`${where}: ${issue.message}`);
        }
        break;
      case "invalid_value":
        lines.push(`${where}: expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`);
        break;
      default:
        lines.push(`${where}: ${issue.message}`);
    }
  }
  return lines;
}
