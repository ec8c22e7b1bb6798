import { readFileSync } from "node:fs";

/** A group name or number to its id, from /etc/group; undefined when there is no such group. */
export function resolveGroup(group: string | number, groupFile = "/etc/group"): number | undefined {
  if (typeof group === "number" || /^\d+$/.test(group)) return Number(group);
  let text: string;
  try {
    text = readFileSync(groupFile, "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const [name, , gid] = line.split(":");
    if (name === group && gid && /^\d+$/.test(gid)) return Number(gid);
  }
  return undefined;
}
