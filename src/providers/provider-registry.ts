import type { ProviderConfig } from "../config/keeper-config.ts";
import { createGitHubAppProvider } from "./github-app/github-app-provider.ts";
import type { TokenProvider } from "./token-provider.ts";

/** Every provider type the keeper knows, in one visible list. */
const FACTORIES: { [T in ProviderConfig["type"]]: (config: Extract<ProviderConfig, { type: T }>) => TokenProvider } = {
  "github-app": createGitHubAppProvider,
};

export function createProvider(config: ProviderConfig): TokenProvider {
  return FACTORIES[config.type](config);
}
