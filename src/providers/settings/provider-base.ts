import type { GitOrigin } from "./git-url.ts";

/** How often to mint when a token says nothing of its expiry. */
export type RefreshEvery = { ms: number } | { cron: string };

/** Settings shared by every provider. */
export interface ProviderBase {
  name: string;
  type: string;
  /** `scheme://host[:port]` the tokens are for. */
  gitOrigin: GitOrigin;
  /** Lower-case owners (first path segment) served; undefined serves any owner. */
  owners: string[] | undefined;
  /** Lower-case path prefix served, with leading and trailing slash (`/` for all). */
  pathPrefix: string;
  /** One token per owner (GitHub App installations) or one token for everything it serves. */
  perOwner: boolean;
  /** With perOwner: one token per repository instead (scopes `owner~repository`). */
  perRepository?: boolean;
  refreshEvery: RefreshEvery | undefined;
  /** The git username sent with the token, where the source does not say. */
  username: string;
  /** git@host: and ssh://git@host/ URLs of gitOrigin's host go over HTTPS instead. */
  sshToHttps: boolean;
  /** The source's own request timeout (ms), for the types that have one: a mint may take three. */
  timeout?: number;
}


/** A provider's own keys, as its schema produced them, without the ones every provider has. */
export type Specific<R> = Omit<R, "name" | "type" | "owners" | "pathPrefix" | "refreshEvery" | "username" | "gitUrl" | "sshToHttps">;
