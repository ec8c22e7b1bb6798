import { describe, expect, it } from "vitest";
import { parseRequestName } from "../../../src/daemon/request-queue.ts";

describe("request names: the whole request in a file name", () => {
  it.each([
    ["mint+acme-app+acme+0+h123", { kind: "mint", provider: "acme-app", owner: "acme", serial: 0 }],
    ["remint+p+globex+17+h9", { kind: "remint", provider: "p", owner: "globex", serial: 17 }],
    ["refresh+*++0+cli1", { kind: "refresh", provider: "*", owner: "", serial: 0 }],
    ["retried+transient++0+s12n1", { kind: "retried", provider: "transient", owner: "", serial: 0 }],
  ])("%s", (name, parsed) => expect(parseRequestName(name)).toEqual(parsed));

  it.each([
    "mint+p+acme+0",
    "steal+p+acme+0+u",
    "mint+p+ACME+0+u",
    "mint+p+../x+0+u",
    "mint+p+acme+-1+u",
    "mint+p+acme+1234567890123+u",
    "mint+p+acme+0+u/../x",
    "mint+p+acme+0+u.failed+x",
    ".mint+p+acme+0+u",
    `mint+${"p".repeat(64)}+acme+0+u`,
    "mint+p+acme+0+u\n",
  ])("rejects %j", (name) => expect(parseRequestName(name)).toBeUndefined());
});
