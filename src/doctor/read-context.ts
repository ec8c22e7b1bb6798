import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { parseOrigin } from "../providers/settings/git-url.ts";
import type { DoctorContext } from "./doctor-check.ts";

interface LooseConfig {
  providers?: { type?: string; gitUrl?: string; apiUrl?: string }[];
}

/** What doctor knows of the setup: the routes the daemon wrote, else the config's URLs. */
export function readContext(options: { env: NodeJS.ProcessEnv; cwd: string; stateDir: string; configFile: string; repo: string | undefined }): DoctorContext {
  let config: LooseConfig = {};
  try {
    config = (parse(readFileSync(options.configFile, "utf8")) as LooseConfig | null) ?? {};
  } catch {
    // Doctor may run as the CI user, who need not read the config.
  }
  const providers = Array.isArray(config.providers) ? config.providers : [];
  let origins: string[] = [];
  try {
    origins = readFileSync(join(options.stateDir, "routes"), "utf8")
      .split("\n")
      .map((l) => l.split(" ")[0] ?? "")
      .filter((o) => o && !o.startsWith("#"));
  } catch {
    origins = providers.flatMap((p) => {
      const o = parseOrigin(p.gitUrl ?? "https://github.com", { allowPath: false });
      return "origin" in o ? [o.origin] : [];
    });
  }
  const apiUrls = providers.filter((p) => p.type === "github-app").map((p) => p.apiUrl ?? "https://api.github.com");
  return { ...options, origins: [...new Set(origins)], apiUrls: [...new Set(apiUrls)] };
}
