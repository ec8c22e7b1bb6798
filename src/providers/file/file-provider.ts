import { readSecretFile } from "../settings/read-secret.ts";
import { basename, dirname } from "node:path";
import { watch, type FSWatcher } from "chokidar";
import type { FileProviderConfig } from "./file-config.ts";
import { ProviderError } from "../../errors/keeper-error.ts";
import { expiryFromFields, jwtExpiry } from "../token-expiry.ts";
import { sharedTokenProvider, type MintedToken, type TokenProvider } from "../token-provider.ts";

// A token whose file says nothing of its expiry is served until the file changes.
const NO_EXPIRY_MS = 365 * 86_400_000;

/**
 * A token file kept by something else: a Vault Agent template, a Kubernetes projected Secret
 * (which changes by swapping its `..data` symlink, so the folder is watched, not the file).
 * Republished on every change; a token already expired is refused.
 */
export function createFileProvider(config: FileProviderConfig, now: () => number = Date.now): TokenProvider {
  let watcher: FSWatcher | undefined;
  return sharedTokenProvider(config, {
    resumes: false,
    async mint(): Promise<MintedToken> {
      let text: string;
      try {
        text = readSecretFile(config.path, "utf8").trim();
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        throw new ProviderError(code === "ENOTREG" || code === "EFBIG" ? (error as Error).message : `cannot read token file '${config.path}': ${code}`, { transient: true, hint: "check that the tool that writes it is running" });
      }
      let token = text;
      let expiresAt: Date | undefined;
      let username: string | undefined;
      if (config.format === "json") {
        let data: Record<string, unknown>;
        try {
          data = JSON.parse(text) as Record<string, unknown>;
        } catch {
          throw new ProviderError(`token file '${config.path}' is not JSON`, { transient: true });
        }
        token = typeof data.token === "string" ? data.token : "";
        expiresAt = expiryFromFields(data, now());
        username = typeof data.username === "string" ? data.username : undefined;
      }
      if (!token || /\s/.test(token)) throw new ProviderError(`token file '${config.path}' holds no single token`, { transient: true });
      expiresAt ??= jwtExpiry(token) ?? (config.refreshEvery ? undefined : new Date(now() + NO_EXPIRY_MS));
      if (expiresAt && expiresAt.getTime() <= now()) {
        throw new ProviderError(`the token in '${config.path}' expired at ${expiresAt.toISOString()}`, { transient: true, hint: "the tool that writes the file has stopped renewing it" });
      }
      return { token, expiresAt, username };
    },
    async watch(onChange) {
      const name = basename(config.path);
      watcher = watch(dirname(config.path), { depth: 0, ignoreInitial: true, awaitWriteFinish: { stabilityThreshold: 50, pollInterval: 20 } });
      // Any change in the folder may be the file: its own write, or a ..data symlink swap.
      watcher.on("all", (_event, path) => {
        if (basename(path) === name || basename(path).startsWith("..")) onChange();
      });
      await new Promise<void>((resolve) => watcher?.once("ready", () => resolve()));
    },
    async dispose() {
      await watcher?.close();
    },
  });
}
