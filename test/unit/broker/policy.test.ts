import { describe, expect, it } from "vitest";
import type { Policy } from "../../../src/config/broker-config.ts";
import { decide, globMatch } from "../../../src/broker/policy.ts";
import { duplicateKeys } from "../../../src/broker/verify-identity.ts";

describe("claim globs", () => {
  it.each([
    ["system:serviceaccount:ci:*", "system:serviceaccount:ci:build", true],
    ["system:serviceaccount:ci:*", "system:serviceaccount:ci:", true],
    ["system:serviceaccount:ci:*", "x-system:serviceaccount:ci:build", false],
    ["system:serviceaccount:ci:*", "System:serviceaccount:ci:build", false],
    ["repo:acme/*:ref:refs/heads/main", "repo:acme/app:ref:refs/heads/main", true],
    ["repo:acme/*:ref:refs/heads/main", "repo:acme/app:ref:refs/heads/main-x", false],
    ["a*b*c", "abc", true],
    ["a*b*c", "aXbYc", true],
    ["a*b*c", "ac", false],
    ["ab*ba", "aba", false],
    ["exact", "exact", true],
    ["exact", "exactly", false],
    ["*", "", true],
    ["a.b", "aXb", false],
  ])("%s ~ %s: %s", (pattern, value, expected) => {
    expect(globMatch(pattern, value)).toBe(expected);
  });

  it("a pattern that makes backtracking matchers explode is answered at once", () => {
    expect(globMatch(`${"a*".repeat(50)}b`, "a".repeat(100_000))).toBe(false);
  });
});

describe("policies", () => {
  const policy = (over: Partial<Policy>): Policy => ({ at: "policies[0]", identity: "cluster", claims: { sub: "ci:*" }, gitOrigin: "https://github.com", owners: ["acme"], repositories: undefined, permissions: undefined, anyIdentityOfIssuer: false, ...over });
  const ask = { gitOrigin: "https://github.com", owner: "acme", repository: undefined };

  it("default deny, first match wins, and the scope comes from the policy", () => {
    const policies = [policy({ owners: ["globex"] }), policy({ at: "policies[1]", repositories: ["app", "lib"], permissions: { contents: "read" } })];
    expect(decide([], "cluster", { sub: "ci:a" }, ask)).toMatchObject({ allow: false });
    expect(decide(policies, "cluster", { sub: "ci:a" }, ask)).toMatchObject({ allow: true, policy: { at: "policies[1]" }, repositories: ["app", "lib"], permissions: { contents: "read" } });
    // Issue 25: the repository asked for is the token's only one (scope: repository).
    expect(decide(policies, "cluster", { sub: "ci:a" }, { ...ask, repository: "lib" })).toMatchObject({ allow: true, repositories: ["lib"] });
    expect(decide(policies, "cluster", { sub: "ci:a" }, { ...ask, repository: "secrets" })).toMatchObject({ allow: false, reason: expect.stringContaining("repository 'acme/secrets'") });
    // A repository named under a policy without repositories: the token is narrowed to it.
    expect(decide([policy({})], "cluster", { sub: "ci:a" }, { ...ask, repository: "app" })).toMatchObject({ allow: true, repositories: ["app"] });
  });

  it.each([
    ["a number", 42],
    ["a list", ["ci:a"]],
    ["an object", { toString: "ci:a" }],
    ["missing", undefined],
  ])("a claim that is %s never matches (no coercion)", (_name, value) => {
    expect(decide([policy({})], "cluster", value === undefined ? {} : { sub: value as never }, ask)).toMatchObject({ allow: false });
  });

  it("another identity, origin or owner does not match", () => {
    expect(decide([policy({})], "actions", { sub: "ci:a" }, ask).allow).toBe(false);
    expect(decide([policy({})], "cluster", { sub: "ci:a" }, { ...ask, gitOrigin: "https://gitlab.com" }).allow).toBe(false);
    expect(decide([policy({})], "cluster", { sub: "ci:a" }, { ...ask, owner: "globex" }).allow).toBe(false);
    expect(decide([policy({ owners: undefined })], "cluster", { sub: "ci:a" }, { ...ask, owner: "globex" }).allow).toBe(true);
  });
});

describe("duplicate keys in a JWT's JSON", () => {
  it.each([
    ['{"sub":"a","sub":"b"}', ["sub"]],
    ['{"sub":"a","s\\u0075b":"b"}', ["sub"]],
    ['{"a":{"sub":1,"sub":2},"b":1}', []],
    ['{"a":"\\"sub\\":1","sub":2}', []],
    ['{ "iss" : "x" , "aud":["a","a"], "iss":"y"}', ["iss"]],
  ])("%s: %j", (json, dupes) => {
    expect(duplicateKeys(json)).toEqual(dupes);
  });
});
