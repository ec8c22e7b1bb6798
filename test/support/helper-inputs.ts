import { fakeGhToken } from "./fake-secrets.ts";

/**
 * Generated credential-helper requests and the routing rules they must follow, shared by the
 * sh helper's test (test/reliability/hostile-helper-input.test.ts) and the TypeScript routing's
 * (test/unit/store/find-route.test.ts), so the two implementations cannot drift apart.
 * The state they run against: ROUTES, and TOKENS by scope.
 */
export const ROUTES = "https://github.com gh / owner acme,globex\nhttp://127.0.0.1:8080 local / shared *\nhttp://localhost:8080 repos / repository *\n";
/** A token per repository (the broker's `scope: repository`): files `owner~repository`. */
export const REPO_SCOPES = ["acme~app", "globex~tools", "acme~x", "initech~y", "acme~z", "any~r"];
export const TOKENS: Record<string, string> = {
  acme: fakeGhToken("HOSTILEacme".repeat(3)),
  globex: fakeGhToken("HOSTILEglobex".repeat(3)),
  any: "local-any-owner-token-0000003",
  ...Object.fromEntries(REPO_SCOPES.map((s, i) => [`repos/${s}`, `repository-token-${i}-${s.replace("~", "-")}-0000`])),
};

// Deterministic pseudo-random numbers: a failure names its seed and input.
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

const HOSTS = ["github.com", "GITHUB.COM", "GitHub.com", "github.com:443", "github.com:444", "github.com.", "github.com.evil.example", "evil.example#github.com", "evil.example", "xn--gthub-n4a.com", "gіthub.com", "github.com@evil.example", "127.0.0.1:8080", "127.0.0.1:8081", "localhost:8080", "[::1]:8080", "github.com\0", ""];
const PROTOCOLS = ["https", "http", "HTTPS", "ftp", "ssh", "file", ""];
const PATHS = ["acme/app.git", "globex/tools", "ACME/x", "initech/y", "../globex/x", "acme/../globex/x", "acme/%2e%2e/globex", "acme%2fglobex/x", "/acme/z", "acme", "", "a".repeat(5000), ".hidden/x", "acme/./x", "globex/../../acme/x", "any/r", "acme/.", "any/."];
const EXTRA = ["url=https://user:pass@github.com/acme/app", "username=someone", "password=guess", "wwwauth[]=Basic realm=x", "capability[]=authtype", "unknown=1", "path=globex/override", "host=evil.example", "=", "noequals", "protocol", `x=${"y".repeat(70_000)}`];

export interface Input {
  text: string;
  protocol: string | undefined;
  host: string | undefined;
  path: string | undefined;
}

export function generate(next: () => number): Input {
  const pick = <T,>(a: T[]) => a[Math.floor(next() * a.length)] as T;
  const fields: [string, string][] = [];
  const n = 1 + Math.floor(next() * 5);
  for (let i = 0; i < n; i++) {
    const r = next();
    if (r < 0.25) fields.push(["protocol", pick(PROTOCOLS)]);
    else if (r < 0.5) fields.push(["host", pick(HOSTS)]);
    else if (r < 0.75) fields.push(["path", pick(PATHS)]);
    else {
      const e = pick(EXTRA);
      const i = e.indexOf("=");
      fields.push(i < 0 ? [e, "\u0000"] : [e.slice(0, i), e.slice(i + 1)]);
    }
  }
  // As git reads them: the last value of a key wins.
  const last = (k: string) => [...fields].reverse().find(([key]) => key === k)?.[1];
  const lines = fields.map(([k, v]) => (v === "\u0000" ? k : `${k}=${v}`));
  const ending = next() < 0.5 ? "\n\n" : next() < 0.5 ? "\n" : "";
  return { text: lines.join("\n") + ending, protocol: last("protocol"), host: last("host"), path: last("path") };
}

/**
 * What a correct helper may answer for the input, from the same rules written out again. A
 * shell's `read` drops NUL bytes (git never sends one), so the model drops them too.
 */
export function allowedToken(input: Input): string | undefined {
  const protocol = input.protocol?.replace(/\0/g, "");
  const host = (input.host ?? "").replace(/\0/g, "").toLowerCase();
  const path = `/${(input.path ?? "").replace(/^\//, "")}`.toLowerCase();
  if (/\/\.\.?(\/|$)|%2[ef]/.test(path)) return undefined;
  const owner = path.split("/")[1] ?? "";
  if (protocol === "https" && (host === "github.com" || host === "github.com:443")) return TOKENS[owner === "acme" || owner === "globex" ? owner : ""];
  // A shared token serves every path under its prefix, whatever the owner.
  if (protocol === "http" && host === "127.0.0.1:8080") return TOKENS.any;
  // A token per repository: owner~repository, the second segment less .git, both plain names.
  if (protocol === "http" && host === "localhost:8080") {
    const repo = (path.split("/")[2] ?? "").replace(/\.git$/, "");
    const plain = /^[a-z0-9_-][a-z0-9._-]*$/;
    return plain.test(owner) && plain.test(repo) && path.split("/").length >= 3 ? TOKENS[`repos/${owner}~${repo}`] : undefined;
  }
  return undefined;
}


/**
 * The token in a helper's answer: `password=`, or the credential form git >= 2.46 asks for
 * (`authtype=Basic` with base64 of username:token, `authtype=Bearer` with the token itself).
 */
export function answeredToken(answer: string): string | undefined {
  const field = (k: string) => new RegExp(`^${k.replace(/[[\]]/g, "\\$&")}=(.*)$`, "m").exec(answer)?.[1];
  const credential = field("credential");
  if (credential === undefined) return field("password");
  if (field("authtype") === "Bearer") return credential;
  const decoded = Buffer.from(credential, "base64").toString("utf8");
  return decoded.slice(decoded.indexOf(":") + 1);
}
