import { z } from "zod";
import type { ProviderBase, Specific } from "../settings/provider-base.ts";
import { OWNER, ENV_NAME, common } from "../settings/schema-parts.ts";
import { base, url, expandPath, ownKeys, type ProviderCheckContext } from "../settings/provider-checks.ts";
import { checkReadableFile } from "../settings/read-secret.ts";

/** The `azure-devops` provider's keys in the config file. */
export const azureDevOpsSchema = z.strictObject({
  ...common,
  type: z.literal("azure-devops"),
  credential: z.enum(["managed-identity", "workload-identity", "client-secret", "client-certificate", "default"]),
  clientId: z.string().min(1).optional(),
  tenantId: z.string().min(1).optional(),
  clientSecretFile: z.string().min(1).optional(),
  clientSecretEnv: z.string().regex(ENV_NAME, "must be an environment variable name").optional(),
  certificateFile: z.string().min(1).optional(),
  federatedTokenFile: z.string().min(1).optional(),
  authorityHost: z.string().optional(),
  /** Entra ID's instance discovery; off for a private authority (and for tests). */
  instanceDiscovery: z.boolean().default(true),
  scope: z.string().default("499b84ac-1321-427f-aa17-267ca6975798/.default"),
  gitUrl: z.string().default("https://dev.azure.com"),
  /** Azure DevOps organisations to serve (the first path segment); the same as owners. */
  organizations: z.array(z.string().regex(OWNER, "must be an Azure DevOps organisation name")).min(1).optional(),
});

/** What a azure-devops provider is given. */
export type AzureDevOpsProviderConfig = ProviderBase & { type: "azure-devops" } & Specific<RawAzureDevOpsProvider>;

export type RawAzureDevOpsProvider = z.output<typeof azureDevOpsSchema>;

/** Checks a azure-devops provider's settings beyond the schema and returns what the daemon needs. */
export function buildAzureDevOpsConfig(raw: RawAzureDevOpsProvider, ctx: ProviderCheckContext): AzureDevOpsProviderConfig | undefined {
  const before = ctx.problems.length;
  const { at, env, problems } = ctx;
  const b = base(raw, ctx, { gitUrl: "https://dev.azure.com", perOwner: false, username: "AzureDevOps" });
  const need = (key: keyof typeof raw, why: string) => raw[key] === undefined && problems.push(`${at}.${String(key)}: missing; ${why}`);
  if (raw.credential === "client-secret" || raw.credential === "client-certificate" || raw.credential === "workload-identity") {
    need("tenantId", `the ${raw.credential} credential needs the Entra ID tenant`);
    need("clientId", `the ${raw.credential} credential needs the app registration's client ID`);
  }
  const files: Partial<Record<"clientSecretFile" | "certificateFile" | "federatedTokenFile", string>> = {};
  if (raw.credential === "client-secret") {
    if ((raw.clientSecretFile === undefined) === (raw.clientSecretEnv === undefined)) problems.push(`${at}: set exactly one of clientSecretFile and clientSecretEnv`);
    if (raw.clientSecretFile) files.clientSecretFile = checkReadableFile(raw.clientSecretFile, `${at}.clientSecretFile`, env, problems, ctx.warnings);
    if (raw.clientSecretEnv && !env[raw.clientSecretEnv]) problems.push(`${at}.clientSecretEnv: environment variable ${raw.clientSecretEnv} is not set`);
  }
  if (raw.credential === "client-certificate") {
    if (!raw.certificateFile) problems.push(`${at}.certificateFile: missing; a PEM file holding the certificate and its private key`);
    else files.certificateFile = checkReadableFile(raw.certificateFile, `${at}.certificateFile`, env, problems, ctx.warnings);
  }
  if (raw.credential === "workload-identity" && !raw.federatedTokenFile && !env.AZURE_FEDERATED_TOKEN_FILE) {
    problems.push(`${at}.federatedTokenFile: missing, and AZURE_FEDERATED_TOKEN_FILE is not set; name the projected service account token file`);
  }
  // The kubelet may write the projected token after the daemon starts: expanded, not read.
  if (raw.federatedTokenFile) files.federatedTokenFile = expandPath(raw.federatedTokenFile, `${at}.federatedTokenFile`, ctx);
  if (raw.authorityHost) url(raw.authorityHost, `${at}.authorityHost`, ctx);
  if (!b || problems.length > before) return undefined;
  return { ...b, ...ownKeys(raw), ...files, type: "azure-devops" };
}
