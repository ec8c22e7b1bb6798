/** What a failure is about, so a caller can decide how loudly and how soon to react. */
export interface KeeperErrorOptions {
  cause?: unknown;
  /** One sentence telling the user how to fix it. */
  hint?: string;
}

/** Base of the few error classes the keeper throws; keeps the original error as `cause`. */
export class KeeperError extends Error {
  readonly hint: string | undefined;

  constructor(message: string, options: KeeperErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
  }
}

/** The configuration is wrong; every problem found is listed, one per line. */
export class ConfigError extends KeeperError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[], options: KeeperErrorOptions = {}) {
    super(problems.join("\n"), options);
    this.problems = problems;
  }
}

/** Minting a token failed. `transient` failures are retried soon, others slowly. */
export class ProviderError extends KeeperError {
  readonly transient: boolean;
  readonly retryAfterMs: number | undefined;

  constructor(
    message: string,
    options: KeeperErrorOptions & { transient: boolean; retryAfterMs?: number },
  ) {
    super(message, options);
    this.transient = options.transient;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** The state directory or one of its files cannot be used. */
export class StoreError extends KeeperError {}

/** A message with its hint, for a log line or a terminal. */
export function describeError(error: unknown): string {
  if (error instanceof KeeperError) {
    return error.hint ? `${error.message} (${error.hint})` : error.message;
  }
  return error instanceof Error ? error.message : String(error);
}
