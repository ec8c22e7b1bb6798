import { readSecretFile } from "../settings/read-secret.ts";
import type { TokenCredential } from "@azure/identity";
import type { AzureDevOpsProviderConfig } from "./azure-devops-config.ts";
import { ProviderError } from "../../errors/keeper-error.ts";
import { sharedTokenProvider, type TokenProvider } from "../token-provider.ts";

/**
 * Entra ID tokens for Azure DevOps through @azure/identity. Git gets the token as the Basic
 * password (what Git Credential Manager sends; Azure DevOps ignores the username). A new
 * credential object per mint: @azure/identity caches tokens per object and would hand back a
 * cached one that the keeper wants replaced.
 */
export function createAzureDevOpsProvider(config: AzureDevOpsProviderConfig, env: NodeJS.ProcessEnv = process.env): TokenProvider {
  const common = {
    ...(config.authorityHost ? { authorityHost: config.authorityHost } : {}),
    disableInstanceDiscovery: !config.instanceDiscovery,
  };

  // @azure/identity is loaded on first use: it is heavy (about 40 MB resident), and most
  // keepers never mint for Azure DevOps.
  async function credential(): Promise<TokenCredential> {
    const {
      ClientAssertionCredential,
      ClientCertificateCredential,
      ClientSecretCredential,
      DefaultAzureCredential,
      ManagedIdentityCredential,
    } = await import("@azure/identity");
    switch (config.credential) {
      case "managed-identity":
        return config.clientId ? new ManagedIdentityCredential({ clientId: config.clientId }) : new ManagedIdentityCredential();
      case "workload-identity": {
        const file = config.federatedTokenFile ?? env.AZURE_FEDERATED_TOKEN_FILE ?? "";
        // Projected service account tokens rotate and an assertion lives minutes: read it at every mint.
        return new ClientAssertionCredential(config.tenantId ?? "", config.clientId ?? "", async () => readSecretFile(file, "utf8").trim(), common);
      }
      case "client-secret": {
        const secret = config.clientSecretFile ? readSecretFile(config.clientSecretFile, "utf8").trim() : (env[config.clientSecretEnv ?? ""] ?? "");
        return new ClientSecretCredential(config.tenantId ?? "", config.clientId ?? "", secret, common);
      }
      case "client-certificate":
        return new ClientCertificateCredential(config.tenantId ?? "", config.clientId ?? "", { certificatePath: config.certificateFile ?? "" }, common);
      case "default":
        return new DefaultAzureCredential({ ...common, ...(config.clientId ? { managedIdentityClientId: config.clientId } : {}) });
    }
  }

  return sharedTokenProvider(config, {
    async mint() {
      let token;
      try {
        token = await (await credential()).getToken(config.scope);
      } catch (error) {
        const message = (error as Error).message.split("\n")[0] ?? String(error);
        // @azure/identity retries transient failures itself; what reaches here is usually
        // configuration (a wrong tenant, client or secret), but a service outage looks alike.
        throw new ProviderError(`getting an Entra ID token (${config.credential}): ${message}`, {
          cause: error,
          transient: !/AADSTS(700016|7000215|90002|700027|50034)|invalid_client|unauthorized_client/.test(message),
          hint: "check tenantId, clientId and the secret, certificate or federated token; `az account get-access-token --resource 499b84ac-1321-427f-aa17-267ca6975798` shows the same error",
        });
      }
      if (!token) throw new ProviderError("@azure/identity returned no token", { transient: true });
      return { token: token.token, expiresAt: new Date(token.expiresOnTimestamp) };
    },
  });
}
