import type { ProviderConfig } from "../config/keeper-config.ts";
import type { Logger } from "../log/logger.ts";
import { createAzureDevOpsProvider } from "./azure-devops/azure-devops-provider.ts";
import { createExecProvider } from "./exec/exec-provider.ts";
import { createFileProvider } from "./file/file-provider.ts";
import { createGitHubAppProvider } from "./github-app/github-app-provider.ts";
import { createGitLabProvider } from "./gitlab/gitlab-provider.ts";
import { createHttpProvider } from "./http/http-provider.ts";
import type { TokenProvider } from "./token-provider.ts";

/** Every provider type the keeper knows, in one visible list. */
const FACTORIES: { [T in ProviderConfig["type"]]: (config: Extract<ProviderConfig, { type: T }>, log: Logger) => TokenProvider } = {
  "github-app": (config) => createGitHubAppProvider(config),
  "azure-devops": (config) => createAzureDevOpsProvider(config),
  gitlab: (config) => createGitLabProvider(config),
  exec: (config, log) => createExecProvider(config, log),
  http: (config) => createHttpProvider(config),
  file: (config) => createFileProvider(config),
};

export function createProvider(config: ProviderConfig, log: Logger): TokenProvider {
  return (FACTORIES[config.type] as (c: ProviderConfig, l: Logger) => TokenProvider)(config, log);
}
