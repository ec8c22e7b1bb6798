import { z } from "zod";
import type { ProviderCheckContext } from "../config/provider-checks.ts";
import type { ProviderBase, ProviderConfig } from "../config/keeper-config.ts";
import type { Logger } from "../log/logger.ts";
import { azureDevOpsSchema, buildAzureDevOpsConfig } from "./azure-devops/azure-devops-config.ts";
import { createAzureDevOpsProvider } from "./azure-devops/azure-devops-provider.ts";
import { buildExecConfig, execSchema } from "./exec/exec-config.ts";
import { createExecProvider } from "./exec/exec-provider.ts";
import { buildFileConfig, fileSchema } from "./file/file-config.ts";
import { createFileProvider } from "./file/file-provider.ts";
import { buildGitHubAppConfig, githubAppSchema } from "./github-app/github-app-config.ts";
import { createGitHubAppProvider } from "./github-app/github-app-provider.ts";
import { buildGitLabConfig, gitlabSchema } from "./gitlab/gitlab-config.ts";
import { createGitLabProvider } from "./gitlab/gitlab-provider.ts";
import { buildHttpConfig, httpSchema } from "./http/http-config.ts";
import { createHttpProvider } from "./http/http-provider.ts";
import type { TokenProvider } from "./token-provider.ts";

/**
 * Every provider type the keeper knows, in one visible list: its config schema, the checks
 * that turn the file's keys into its settings, and the factory. A new token source is a folder
 * under src/providers/ and one line here.
 */
const PROVIDERS = {
  "github-app": entry(githubAppSchema, buildGitHubAppConfig, (c) => createGitHubAppProvider(c)),
  "azure-devops": entry(azureDevOpsSchema, buildAzureDevOpsConfig, (c) => createAzureDevOpsProvider(c)),
  gitlab: entry(gitlabSchema, buildGitLabConfig, (c) => createGitLabProvider(c)),
  exec: entry(execSchema, buildExecConfig, (c, log) => createExecProvider(c, log)),
  http: entry(httpSchema, buildHttpConfig, (c) => createHttpProvider(c)),
  file: entry(fileSchema, buildFileConfig, (c) => createFileProvider(c)),
};

/** One provider type: its schema, its checks (raw keys to settings), its factory, typed together. */
function entry<S extends z.ZodType<{ type: string }>, C extends ProviderBase>(
  schema: S,
  build: (raw: z.output<S>, ctx: ProviderCheckContext) => C | undefined,
  create: (config: C, log: Logger) => TokenProvider,
) {
  return { schema, build, create };
}

/** The settings any registered provider is given (ProviderConfig in config/keeper-config.ts). */
export type RegisteredProviderConfig = NonNullable<ReturnType<(typeof PROVIDERS)[keyof typeof PROVIDERS]["build"]>>;

export type ProviderType = keyof typeof PROVIDERS;
export const PROVIDER_TYPES = Object.keys(PROVIDERS) as ProviderType[];
/** Each type's schema, for messages that list a type's keys. */
export const PROVIDER_SCHEMAS = Object.fromEntries(PROVIDER_TYPES.map((t) => [t, PROVIDERS[t].schema])) as { [T in ProviderType]: (typeof PROVIDERS)[T]["schema"] };

type Schema = (typeof PROVIDERS)[ProviderType]["schema"];
export const providerSchema = z.discriminatedUnion("type", PROVIDER_TYPES.map((t) => PROVIDERS[t].schema) as [Schema, ...Schema[]]);
export type RawProvider = z.output<typeof providerSchema>;

/** Checks one provider's settings beyond the schema and returns what the daemon needs. */
export function buildProvider(raw: RawProvider, ctx: ProviderCheckContext): ProviderConfig | undefined {
  return (PROVIDERS[raw.type].build as (r: RawProvider, c: ProviderCheckContext) => ProviderConfig | undefined)(raw, ctx);
}

export function createProvider(config: ProviderConfig, log: Logger): TokenProvider {
  return (PROVIDERS[config.type].create as (c: ProviderConfig, l: Logger) => TokenProvider)(config, log);
}
