import { z } from "zod";
import type { ProviderCheckContext } from "./settings/provider-checks.ts";
import type { ProviderBase } from "./settings/provider-base.ts";
import type { Logger } from "../log/logger.ts";
import { azureDevOpsSchema, buildAzureDevOpsConfig } from "./azure-devops/azure-devops-config.ts";
import { brokerProviderSchema, buildBrokerProviderConfig } from "./broker/broker-config.ts";
import { buildExecConfig, execSchema } from "./exec/exec-config.ts";
import { buildFileConfig, fileSchema } from "./file/file-config.ts";
import { buildGitHubAppConfig, githubAppSchema } from "./github-app/github-app-config.ts";
import { buildGitLabConfig, gitlabSchema } from "./gitlab/gitlab-config.ts";
import { buildHttpConfig, httpSchema } from "./http/http-config.ts";
import type { TokenProvider } from "./token-provider.ts";

/**
 * Every provider type the keeper knows, in one visible list: its config schema, the checks
 * that turn the file's keys into its settings, and how to load its factory. A new token source
 * is a folder under src/providers/ and one entry here. Implementations are loaded only for the
 * types a config uses (an Azure DevOps SDK costs a GitHub-only daemon nothing).
 */
const PROVIDERS = {
  "github-app": entry(githubAppSchema, buildGitHubAppConfig, () => import("./github-app/github-app-provider.ts").then((m) => (c, log) => m.createGitHubAppProvider(c, { log }))),
  "azure-devops": entry(azureDevOpsSchema, buildAzureDevOpsConfig, () => import("./azure-devops/azure-devops-provider.ts").then((m) => (c) => m.createAzureDevOpsProvider(c))),
  gitlab: entry(gitlabSchema, buildGitLabConfig, () => import("./gitlab/gitlab-provider.ts").then((m) => (c) => m.createGitLabProvider(c))),
  exec: entry(execSchema, buildExecConfig, () => import("./exec/exec-provider.ts").then((m) => (c, log) => m.createExecProvider(c, log))),
  http: entry(httpSchema, buildHttpConfig, () => import("./http/http-provider.ts").then((m) => (c) => m.createHttpProvider(c))),
  file: entry(fileSchema, buildFileConfig, () => import("./file/file-provider.ts").then((m) => (c) => m.createFileProvider(c))),
  broker: entry(brokerProviderSchema, buildBrokerProviderConfig, () => import("./broker/broker-provider.ts").then((m) => (c) => m.createBrokerProvider(c))),
};

/** One provider type: its schema, its checks (raw keys to settings), its factory, typed together. */
function entry<S extends z.ZodType<{ type: string }>, C extends ProviderBase>(
  schema: S,
  build: (raw: z.output<S>, ctx: ProviderCheckContext) => C | undefined,
  load: () => Promise<(config: C, log: Logger) => TokenProvider>,
) {
  return { schema, build, load };
}

type Factory = (config: ProviderConfig, log: Logger) => TokenProvider;
const loaded = new Map<string, Factory>();

/** Any provider's settings: the union of what each registered provider is given. */
export type ProviderConfig = NonNullable<ReturnType<(typeof PROVIDERS)[keyof typeof PROVIDERS]["build"]>>;

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

/** Loads the implementations of the provider types these configs use (once per type). */
export async function loadProviders(configs: readonly ProviderConfig[]): Promise<void> {
  for (const type of new Set(configs.map((c) => c.type))) {
    if (!loaded.has(type)) loaded.set(type, (await PROVIDERS[type].load()) as Factory);
  }
}

/** A provider for these settings; its type must have been loaded with loadProviders(). */
export function createProvider(config: ProviderConfig, log: Logger): TokenProvider {
  const create = loaded.get(config.type);
  if (!create) throw new Error(`provider type ${config.type} was not loaded (call loadProviders first)`);
  return create(config, log);
}
