import type { ProviderBase } from "./settings/provider-base.ts";

/** A token as a source hands it out. */
export interface MintedToken {
  token: string;
  /** When the source says; else the JWT's exp, else the provider's refreshEvery decides. */
  expiresAt?: Date | undefined;
  /**
   * The token API's clock when it answered (its Date header): an expiry it gave is counted from
   * this, not from this machine's clock.
   */
  serverDate?: Date | undefined;
  /** The username git must send, when the source says; else the provider's `username`. */
  username?: string | undefined;
}

export interface MintContext {
  refused?: string | undefined;
  /**
   * The broker's scope: a GitHub App token for fewer repositories or lower permissions than
   * the provider's settings. Intersected with them, never in their place: the settings are the
   * ceiling of every token the provider mints.
   */
  narrow?: { repositories?: string[] | undefined; permissions?: Record<string, string> | undefined } | undefined;
  /**
   * The owner was named by the admin (the broker's policy lists it), not learned from whoever
   * asked: an any-owner provider does not count its lookup against the bound for made-up owners.
   */
  ownerListed?: boolean | undefined;
}

/** The scope of providers with one token for everything they serve (`perOwner: false`). */
export const SHARED_SCOPE = "shared";

/**
 * A token source. Providers only mint: scheduling, backoff, coalescing, re-mint on refusal,
 * redaction and storage are the daemon's, shared by all of them. See docs/providers.md.
 */
export interface TokenProvider {
  readonly config: ProviderBase;
  /** Owners to mint when the daemon starts (per-owner providers; may ask the source). */
  initialOwners(): Promise<string[]>;
  /** Lower-case owners it may hand tokens out for (none yet, before initialOwners learned them), or undefined for any owner. */
  servedOwners(): string[] | undefined;
  /**
   * Mints a new token for an owner, or for SHARED_SCOPE; throws a ProviderError. `refused`:
   * the fingerprint of the token a host refused, when that is why (a broker re-mints it).
   */
  mint(scope: string, context?: MintContext): Promise<MintedToken>;
  /**
   * Whether it can mint for this owner by fact, where its settings alone do not say (a GitHub
   * App installation set by id belongs to one account). Absent: `servedOwners()` decides.
   */
  servesOwner?(owner: string): Promise<boolean>;
  /** For sources that change by themselves (a watched file): call onChange to republish. */
  watch?(onChange: () => void): Promise<void>;
  dispose?(): Promise<void>;
  /**
   * A mint uses up a secret and its answer holds the only next one (GitLab's single-use refresh
   * token, self-rotation): a stop or reload waits for a mint in flight instead of dropping it.
   */
  readonly rotatesSecret?: boolean;
  /**
   * false: a token an earlier run left is never resumed: the source is read again at start (a
   * file or a command: cheap, and what it hands out may have changed while the daemon was down,
   * with an environment or file the settings fingerprint does not cover).
   */
  readonly resumes?: boolean;
}

/** Whether the provider serves a scope: `shared`, an owner, or `owner~repository`. */
export function serves(provider: TokenProvider, scope: string): boolean {
  if (!provider.config.perOwner) return scope === SHARED_SCOPE;
  const [owner, repository] = scope.split("~");
  if ((repository !== undefined) !== (provider.config.perRepository === true)) return false;
  const owners = provider.servedOwners();
  return owners === undefined || owners.includes(owner as string);
}

/** A provider with one token for everything it serves: only how to mint (and watch) differs. */
export function sharedTokenProvider(
  config: ProviderBase,
  parts: Pick<TokenProvider, "mint" | "watch" | "dispose" | "rotatesSecret" | "resumes">,
): TokenProvider {
  return { config, initialOwners: async () => [], servedOwners: () => config.owners, ...parts };
}
