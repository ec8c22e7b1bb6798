import type { ProviderBase } from "../config/keeper-config.ts";

/** A token as a source hands it out. */
export interface MintedToken {
  token: string;
  expiresAt: Date;
  /** The username git must send with the token. */
  username: string;
}

/**
 * A token source. Providers only mint: scheduling, backoff, coalescing, re-mint on refusal,
 * redaction and storage are the daemon's, shared by all of them.
 */
export interface TokenProvider {
  readonly config: ProviderBase;
  /** Owners to mint when the daemon starts (may ask the source, e.g. an installation's account). */
  initialOwners(): Promise<string[]>;
  /** Lower-case owners it may hand tokens out for (none yet, before initialOwners learned them), or undefined for any owner. */
  servedOwners(): string[] | undefined;
  /** Mints a new token for an owner; throws a ProviderError. */
  mint(owner: string): Promise<MintedToken>;
  dispose?(): Promise<void>;
}

export function serves(provider: TokenProvider, owner: string): boolean {
  const owners = provider.servedOwners();
  return owners === undefined || owners.includes(owner);
}
