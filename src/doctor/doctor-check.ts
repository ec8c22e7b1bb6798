/** One line of `doctor`: what was checked, how it went, and what to do about it. */
export interface CheckResult {
  level: "ok" | "warn" | "fail" | "skip";
  what: string;
  fix?: string;
}

/** What the checks read: the environment doctor runs in (the build user's). */
export interface DoctorContext {
  env: NodeJS.ProcessEnv;
  cwd: string;
  stateDir: string;
  configFile: string;
  /** `scheme://host[:port]` origins the keeper serves (from the routes file or the config). */
  origins: string[];
  /** Token API base URLs from the config. */
  apiUrls: string[];
  /** `--repo URL`: a repository to ls-remote through the shim. */
  repo: string | undefined;
}
