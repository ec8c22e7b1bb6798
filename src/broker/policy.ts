import type { JWTPayload } from "jose";
import type { Policy } from "../config/broker-config.ts";

/**
 * A claim glob: `*` stands for any run of characters, everything else is itself; anchored at
 * both ends, case-exact. Matched greedily part by part (each `*` takes the first place its next
 * part fits), which is linear in the value's length: no pattern can make it backtrack.
 */
export function globMatch(pattern: string, value: string): boolean {
  const parts = pattern.split("*");
  if (parts.length === 1) return pattern === value;
  const first = parts[0] as string;
  const last = parts[parts.length - 1] as string;
  if (value.length < first.length + last.length || !value.startsWith(first) || !value.endsWith(last)) return false;
  let at = first.length;
  const end = value.length - last.length;
  for (const part of parts.slice(1, -1)) {
    const found = value.indexOf(part, at);
    if (found < 0 || found + part.length > end) return false;
    at = found + part.length;
  }
  return true;
}

export interface TokenAsk {
  gitOrigin: string;
  owner: string;
  repository: string | undefined;
}

export type Decision =
  | { allow: true; policy: Policy; repositories: string[] | undefined; permissions: Record<string, string> | undefined; claimsUsed: Record<string, string> }
  | { allow: false; reason: string };

/**
 * The first policy that allows this ask for this identity, with the scope of the token it gets:
 * the repository asked for (which the policy must allow), else the policy's repositories; its
 * permissions. The provider that serves it narrows nothing further: it is the ceiling of both
 * (the config check makes sure no policy reaches past it; scope-cache intersects again).
 * A claim the policy names must be a string (never coerced): a number, a list or a missing
 * claim does not match. Default deny.
 */
export function decide(policies: Policy[], identity: string, claims: JWTPayload, ask: TokenAsk): Decision {
  let closest = "no policy for this identity";
  for (const policy of policies) {
    if (policy.identity !== identity) continue;
    const used: Record<string, string> = {};
    const claimsMatch = Object.entries(policy.claims).every(([name, pattern]) => {
      const value = Object.hasOwn(claims, name) ? claims[name] : undefined;
      if (typeof value !== "string") return false;
      used[name] = value;
      return globMatch(pattern, value);
    });
    if (!claimsMatch) {
      // Which claims a policy checks is the operator's business, not the caller's.
      closest = "no policy matches this identity's claims";
      continue;
    }
    if (policy.gitOrigin !== ask.gitOrigin) {
      closest = `no policy allows ${ask.gitOrigin} for this identity`;
      continue;
    }
    if (policy.owners && !policy.owners.includes(ask.owner)) {
      closest = `no policy allows owner '${ask.owner}' for this identity`;
      continue;
    }
    if (ask.repository !== undefined && policy.repositories && !policy.repositories.includes(ask.repository)) {
      closest = `no policy allows repository '${ask.owner}/${ask.repository}' for this identity`;
      continue;
    }
    // A repository asked for is the token's one repository (scope: repository), within the
    // policy's; else the policy's list, or none (the provider's ceiling then).
    const repositories = ask.repository !== undefined ? [ask.repository] : policy.repositories ? [...policy.repositories].sort() : undefined;
    return { allow: true, policy, repositories, permissions: policy.permissions, claimsUsed: used };
  }
  return { allow: false, reason: closest };
}
