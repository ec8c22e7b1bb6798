import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expiryFromFields, jwtExpiry } from "../../../src/providers/token-expiry.ts";

const NOW = Date.parse("2026-11-26T10:00:00Z");

describe("expiryFromFields", () => {
  // A machine whose local time is not UTC, where an offset-less ISO time would read wrong.
  const tz = process.env.TZ;
  beforeAll(() => {
    process.env.TZ = "America/New_York";
  });
  afterAll(() => {
    if (tz === undefined) delete process.env.TZ;
    else process.env.TZ = tz;
  });

  it.each([
    ["epoch seconds", { expires_at: 1_795_000_000 }, 1_795_000_000_000],
    ["epoch seconds as text", { expires_at: "1795000000" }, 1_795_000_000_000],
    ["epoch milliseconds", { expires_at: 1_795_000_000_000 }, 1_795_000_000_000],
    ["epoch milliseconds as text", { expires_on: "1795000000000" }, 1_795_000_000_000],
    ["ISO with Z", { expires_at: "2026-11-26T11:00:00Z" }, Date.parse("2026-11-26T11:00:00Z")],
    ["ISO with an offset", { expires_at: "2026-11-26T12:00:00+01:00" }, Date.parse("2026-11-26T11:00:00Z")],
    ["ISO without an offset: UTC, not local time", { expires_at: "2026-11-26T11:00:00" }, Date.parse("2026-11-26T11:00:00Z")],
    ["ISO with a space and fractions, no offset", { expires_at: "2026-11-26 11:00:00.250" }, Date.parse("2026-11-26T11:00:00.250Z")],
    ["expires_in seconds", { expires_in: 3600 }, NOW + 3_600_000],
  ])("%s", (_label, fields, expected) => {
    expect(expiryFromFields(fields, NOW)?.getTime()).toBe(expected);
  });

  it("nothing it can read is undefined", () => {
    expect(expiryFromFields({ expires_at: "soon" }, NOW)).toBeUndefined();
    expect(expiryFromFields({}, NOW)).toBeUndefined();
  });

  it("reads a JWT's exp", () => {
    const payload = Buffer.from(JSON.stringify({ exp: 1_795_000_000 })).toString("base64url");
    expect(jwtExpiry(`h.${payload}.s`)?.getTime()).toBe(1_795_000_000_000);
    expect(jwtExpiry("not-a-jwt")).toBeUndefined();
  });
});
