import { createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import type { RawProvider, RawGitHubAppProvider } from "./config-schema.ts";
import { parseOrigin } from "./git-url.ts";
import type { ProviderBase, ProviderConfig } from "./keeper-config.ts";
import { expandEnv } from "./expand-env.ts";
import { checkReadableFile, checkWritableLocation } from "./read-secret.ts";

interface Ctx {
  at: string;
  env: NodeJS.ProcessEnv;
  problems: string[];
  warnings: string[];
}

function base(raw: RawProvider, ctx: Ctx, defaults: { gitUrl: string; perOwner: boolean; username: string }): ProviderBase | undefined {
  const gitUrl = ("gitUrl" in raw && raw.gitUrl) || defaults.gitUrl;
  const git = parseOrigin(gitUrl, { allowPath: false });
  if ("problem" in git) {
    ctx.problems.push(`${ctx.at}.gitUrl: ${git.problem}`);
    return undefined;
  }
  const owners = raw.owners ?? ("organizations" in raw ? raw.organizations : undefined);
  if (raw.owners && "organizations" in raw && raw.organizations) ctx.problems.push(`${ctx.at}: set owners or organizations, not both (they mean the same)`);
  if (owners && raw.pathPrefix) ctx.problems.push(`${ctx.at}: set owners or pathPrefix, not both (an owner is the path prefix /owner/)`);
  if (raw.sshToHttps && raw.type === "azure-devops") {
    ctx.problems.push(`${ctx.at}.sshToHttps: Azure DevOps SSH URLs (git@ssh.dev.azure.com:v3/org/project/repo) do not map to its HTTPS URLs by prefix; use HTTPS remote URLs, or leave sshToHttps out`);
  }
  let pathPrefix = (raw.pathPrefix ?? "/").toLowerCase();
  if (!pathPrefix.endsWith("/")) pathPrefix += "/";
  return {
    name: raw.name,
    type: raw.type,
    gitOrigin: git.origin,
    owners: owners?.map((o) => o.toLowerCase()),
    pathPrefix,
    perOwner: defaults.perOwner,
    refreshEvery: raw.refreshEvery,
    username: raw.username ?? defaults.username,
    sshToHttps: raw.sshToHttps,
  };
}

/** A path with `${VAR}` expanded; an unset variable or a relative result is a problem naming the key. */
function expandPath(value: string, key: string, ctx: Ctx): string | undefined {
  const expanded = expandEnv(value, ctx.env);
  if (expanded.missing.length) {
    ctx.problems.push(`${key}: '${value}' uses ${expanded.missing.map((n) => `\${${n}}`).join(", ")}, which is not set`);
    return undefined;
  }
  if (!expanded.value.startsWith("/")) {
    ctx.problems.push(`${key}: '${value}' must be an absolute path`);
    return undefined;
  }
  return expanded.value;
}

function url(value: string, key: string, ctx: Ctx): string | undefined {
  const parsed = parseOrigin(value, { allowPath: true });
  if ("problem" in parsed) {
    ctx.problems.push(`${key}: ${parsed.problem}`);
    return undefined;
  }
  return parsed.url.href.replace(/\/+$/, "");
}

/** Checks one provider's settings beyond the schema and returns what the daemon needs. */
export function buildProvider(raw: RawProvider, ctx: Ctx): ProviderConfig | undefined {
  const before = ctx.problems.length;
  const { at, env, problems } = ctx;
  switch (raw.type) {
    case "github-app": {
      const b = base(raw, ctx, { gitUrl: "https://github.com", perOwner: true, username: "x-access-token" });
      if ((raw.appId === undefined) === (raw.clientId === undefined)) {
        problems.push(`${at}: set exactly one of appId and clientId (the GitHub App's settings page shows both)`);
      }
      if (raw.privateKeyFile !== undefined && raw.privateKeyEnv !== undefined) problems.push(`${at}: set only one of privateKeyFile and privateKeyEnv`);
      const privateKey = readPrivateKey(raw, ctx);
      const apiUrl = url(raw.apiUrl, `${at}.apiUrl`, ctx);
      if (!b || !privateKey || !apiUrl || problems.length > before) return undefined;
      return { ...b, type: "github-app", appId: (raw.appId ?? raw.clientId) as number | string, privateKey, apiUrl, installationId: raw.installationId, repositories: raw.repositories, permissions: raw.permissions, timeoutMs: raw.timeout };
    }
    case "azure-devops": {
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
      const { name: _n, type: _t, owners: _o, pathPrefix: _p, refreshEvery: _r, username: _u, gitUrl: _g, sshToHttps: _s, organizations: _org, ...rest } = raw;
      return { ...b, ...rest, ...files, type: "azure-devops" };
    }
    case "gitlab": {
      const apiBase = url(raw.baseUrl, `${at}.baseUrl`, ctx);
      const origin = apiBase ? new URL(apiBase).origin : "https://gitlab.com";
      const b = base(raw, ctx, { gitUrl: origin, perOwner: false, username: "oauth2" });
      const files: Partial<Record<"refreshTokenFile" | "clientSecretFile" | "tokenFile", string>> = {};
      if (raw.grant === "refresh-token") {
        if (!raw.clientId) problems.push(`${at}.clientId: missing; the OAuth application's ID (refresh-token grant)`);
        if (!raw.refreshTokenFile) problems.push(`${at}.refreshTokenFile: missing; a file holding the first refresh token, rewritten at every refresh`);
        else files.refreshTokenFile = checkReadableFile(raw.refreshTokenFile, `${at}.refreshTokenFile`, env, problems);
        if (raw.clientSecretFile) files.clientSecretFile = checkReadableFile(raw.clientSecretFile, `${at}.clientSecretFile`, env, problems, ctx.warnings);
      } else {
        if (!raw.tokenFile) problems.push(`${at}.tokenFile: missing; a file holding the access token, rewritten at every rotation`);
        else files.tokenFile = checkReadableFile(raw.tokenFile, `${at}.tokenFile`, env, problems);
        if (raw.tokenKind !== "personal" && raw.resourceId === undefined) problems.push(`${at}.resourceId: missing; the ${raw.tokenKind}'s ID or full path`);
      }
      if (!b || !apiBase || problems.length > before) return undefined;
      const { name: _n, type: _t, owners: _o, pathPrefix: _p, refreshEvery: _r, username: _u, gitUrl: _g, sshToHttps: _s, ...rest } = raw;
      return { ...b, ...rest, ...files, type: "gitlab", apiBase };
    }
    case "exec": {
      const b = base(raw, ctx, { gitUrl: raw.gitUrl, perOwner: false, username: "x-access-token" });
      if (!b || problems.length > before) return undefined;
      const { name: _n, type: _t, owners: _o, pathPrefix: _p, refreshEvery: _r, username: _u, gitUrl: _g, sshToHttps: _s, ...rest } = raw;
      return { ...b, ...rest, type: "exec" };
    }
    case "http": {
      const b = base(raw, ctx, { gitUrl: raw.gitUrl, perOwner: false, username: "x-access-token" });
      url(raw.url, `${at}.url`, ctx);
      const files: Partial<Record<"bearerTokenFile" | "caFile" | "certFile" | "keyFile", string>> = {};
      for (const key of ["bearerTokenFile", "caFile", "certFile", "keyFile"] as const) {
        const file = raw[key];
        if (file) files[key] = checkReadableFile(file, `${at}.${key}`, env, problems, key === "keyFile" || key === "bearerTokenFile" ? ctx.warnings : undefined);
      }
      if ((raw.certFile === undefined) !== (raw.keyFile === undefined)) problems.push(`${at}: set both certFile and keyFile for a client certificate, or neither`);
      if (raw.expiresAtPath && raw.expiresInPath) problems.push(`${at}: set expiresAtPath or expiresInPath, not both`);
      if (!b || problems.length > before) return undefined;
      const { name: _n, type: _t, owners: _o, pathPrefix: _p, refreshEvery: _r, username: _u, gitUrl: _g, sshToHttps: _s, ...rest } = raw;
      return { ...b, ...rest, ...files, type: "http" };
    }
    case "file": {
      const b = base(raw, ctx, { gitUrl: raw.gitUrl, perOwner: false, username: "x-access-token" });
      const path = checkWritableLocation(raw.path, `${at}.path`, env, problems);
      if (!b || !path || problems.length > before) return undefined;
      const { name: _n, type: _t, owners: _o, pathPrefix: _p, refreshEvery: _r, username: _u, gitUrl: _g, sshToHttps: _s, ...rest } = raw;
      return { ...b, ...rest, path, type: "file" };
    }
  }
}

function readPrivateKey(raw: RawGitHubAppProvider, ctx: Ctx): string | undefined {
  const { at, env, problems } = ctx;
  let pem: string;
  let key: string;
  // Neither given: systemd's LoadCredential=<name>.pem puts it here.
  const fromCredentials = env.CREDENTIALS_DIRECTORY ? `\${CREDENTIALS_DIRECTORY}/${raw.name}.pem` : undefined;
  const keyFile = raw.privateKeyFile ?? (raw.privateKeyEnv === undefined ? fromCredentials : undefined);
  if (keyFile === undefined && raw.privateKeyEnv === undefined) {
    problems.push(`${at}: set privateKeyFile or privateKeyEnv (or, under systemd, LoadCredential=${raw.name}.pem:/path/to/key)`);
    return undefined;
  }
  if (keyFile !== undefined) {
    key = `${at}.privateKeyFile`;
    const file = checkReadableFile(keyFile, key, env, problems, ctx.warnings);
    if (!file) return undefined;
    pem = readFileSync(file, "utf8");
  } else {
    key = `${at}.privateKeyEnv`;
    const value = env[raw.privateKeyEnv as string];
    if (!value) {
      problems.push(`${key}: environment variable ${raw.privateKeyEnv} is not set; export the App's PEM key in it`);
      return undefined;
    }
    // Many secret stores flatten newlines to a literal \n.
    pem = value.includes("\\n") && !value.includes("\n") ? value.replace(/\\n/g, "\n") : value;
  }
  try {
    const parsed = createPrivateKey(pem);
    if (parsed.asymmetricKeyType !== "rsa") {
      problems.push(`${key}: the key is ${parsed.asymmetricKeyType}, but GitHub Apps sign with RSA; download a new private key from the App's settings`);
      return undefined;
    }
    // Normalise to PKCS#8 so the JWT signer accepts keys GitHub hands out (PKCS#1) and others.
    return parsed.export({ type: "pkcs8", format: "pem" }).toString();
  } catch {
    problems.push(`${key}: not a PEM private key (expected the PEM file the App's settings page downloads); download the key again from the App's settings`);
    return undefined;
  }
}
