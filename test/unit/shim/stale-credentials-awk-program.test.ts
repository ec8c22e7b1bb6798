import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { haveTool } from "../../support/require-tool.ts";
import { SHIM_DIR } from "../../support/run-git.ts";

// The program's own file, run with awk -f as the shim runs it.
const PROGRAM = join(SHIM_DIR, "stale-credentials.awk");
const H = "https://git.example";

/** The awks the shim meets: the system's awk (mawk on Debian), and busybox's where present. */
const awks: [string, string[]][] = [["awk", ["awk"]]];
if (haveTool("busybox", "busybox is not installed, so its awk is not tested")) awks.push(["busybox awk", ["busybox", "awk"]]);

/**
 * The program's output for config entries given as `KEY VALUE` lines, passed in as the shim
 * passes them: `git config -z` records (KEY, newline, VALUE, NUL) through `tr '\n\0' '\037\n'`.
 */
function proposals(awk: string[], input: string, served = `${H}/acme/`): string[] {
  const records = input
    .split("\n")
    .filter(Boolean)
    .map((line) => (line.includes(" ") ? `${line.slice(0, line.indexOf(" "))}\n${line.slice(line.indexOf(" ") + 1)}\0` : `${line}\0`))
    .join("");
  return proposalsOfRecords(awk, records, served);
}

function proposalsOfRecords(awk: string[], records: string, served = `${H}/acme/`): string[] {
  const [cmd, ...pre] = awk as [string, ...string[]];
  const input = execFileSync("tr", ["\\n\\000", "\\037\\n"], { input: records, encoding: "utf8" });
  const out = execFileSync(cmd, [...pre, "-v", `served=${served}`, "-v", "helper=/shim/helper", "-f", PROGRAM], { input, encoding: "utf8" });
  return out.split("\n").filter(Boolean);
}

for (const [name, awk] of awks) {
  describe(`the stale-credentials awk program under ${name}`, () => {
    it("proposes nothing when nothing carries a credential", () => {
      expect(proposals(awk, `remote.origin.url ${H}/acme/app.git\n`)).toEqual([]);
    });

    it("a user:token URL: the whole URL rewritten to itself without it, for that URL only, and for git-lfs in this repository", () => {
      const out = proposals(awk, `remote.origin.url https://x:tok@git.example/acme/app.git\n`);
      expect(out).toContain(`+\turl.${H}/acme/app.git.insteadOf\thttps://x:tok@git.example/acme/app.git`);
      expect(out).toContain(`@\tremote.origin.pushurl\t${H}/acme/app.git`);
      expect(out).toContain(`@\tremote.origin.url\t${H}/acme/app.git`);
      expect(out.some((l) => l.includes("url.https://git.example/.insteadOf"))).toBe(false);
    });

    it("a whole-URL rule with a token (GitLab Runner) is met by a rule read first; its host rule by a longer one for the served prefix", () => {
      const input = [
        `remote.origin.url ${H}/acme/app.git`,
        `url.https://gitlab-ci-token:T@git.example/acme/app.git.insteadof ${H}/acme/app.git`,
        `url.https://gitlab-ci-token:T@git.example.insteadof ${H}`,
      ].join("\n");
      const out = proposals(awk, `${input}\n`);
      expect(out).toContain(`^\turl.${H}/acme/app.git.insteadOf\t${H}/acme/app.git`);
      expect(out).toContain(`+\turl.${H}/acme/.insteadOf\t${H}/acme/`);
    });

    it("an Authorization header on the host: reset for the served prefix and the URL, other headers kept, in order", () => {
      const input = [`remote.origin.url ${H}/acme/app.git`, `http.${H}/.extraheader AUTHORIZATION: basic c3RhbGU=`, `http.extraheader X-Trace: 1`].join("\n");
      const out = proposals(awk, `${input}\n`);
      const forPrefix = out.slice(out.indexOf(`?\t${H}/acme/`));
      expect(forPrefix.slice(1, 3)).toEqual([`+\thttp.${H}/acme/.extraheader\t`, `+\thttp.${H}/acme/.extraheader\tX-Trace: 1`]);
      expect(out).toContain(`+\thttp.${H}/acme/app.git.extraheader\t`);
      expect(out).toContain(`+\thttp.${H}/acme/app.git/info/lfs.extraheader\tX-Git-Token-Keeper: lfs`);
    });

    it("a header only for another owner's path is not touched", () => {
      const out = proposals(awk, `http.${H}/other/.extraheader Authorization: basic b3du\n`);
      expect(out.filter((l) => l.startsWith("+"))).toEqual([]);
    });

    it("relative submodule URLs resolve against the superproject's remote", () => {
      const out = proposals(awk, `origin https://x:t@git.example/acme/app.git\nsubmodule.lib.url ../lib.git\n`);
      expect(out).toContain(`?\t${H}/acme/lib.git`);
    });

    it("a plain http.extraheader (no URL in the key) with an Authorization: reset for the served prefix and the URL", () => {
      const out = proposals(awk, `remote.origin.url ${H}/acme/app.git\nhttp.extraheader AUTHORIZATION: basic c3RhbGU=\nhttp.extraheader X-Trace: 1\n`);
      expect(out).toContain(`+\thttp.${H}/acme/.extraheader\t`);
      expect(out).toContain(`+\thttp.${H}/acme/.extraheader\tX-Trace: 1`);
      expect(out).toContain(`+\thttp.${H}/acme/app.git.extraheader\t`);
    });

    it("a value holding a newline stays one value: never a second entry, and never proposed", () => {
      const hostile = `../docs.git\nurl.https://x:y@git.example/acme/other.insteadof ${H}/acme/app`;
      const out = proposalsOfRecords(awk, `remote.origin.url\n${H}/acme/app.git\0submodule.docs.url\n${hostile}\0`);
      expect(out.join("\n")).not.toContain("other");
      expect(out).toEqual([]);
    });

    it("a key or URL with a control character is dropped; a header value may hold a tab", () => {
      expect(proposalsOfRecords(awk, `remote.origin.url\nhttps://x:t@git.example/acme/a\tb.git\0`)).toEqual([]);
      const out = proposalsOfRecords(awk, `remote.origin.url\n${H}/acme/app.git\0http.extraheader\nAuthorization: basic x\0http.extraheader\nX-A:\tb\0`);
      expect(out).toContain(`+\thttp.${H}/acme/app.git.extraheader\tX-A:\tb`);
    });

    it("after a modules record, submodules' remote URLs are URLs the command uses and nothing else", () => {
      const out = proposalsOfRecords(awk, `modules\n\0remote.origin.url\nhttps://x:t@git.example/acme/lib.git\0remote.origin.push\n+refs/heads/*\0`);
      expect(out).toContain(`+\turl.${H}/acme/lib.git.insteadOf\thttps://x:t@git.example/acme/lib.git`);
      expect(out).not.toContain("!\tforced");
      expect(out.some((l) => l.startsWith("@"))).toBe(false);
    });

    it("a forcing push refspec or a mirror remote is reported for the retry policy", () => {
      expect(proposals(awk, "remote.origin.push +refs/heads/*:refs/heads/*\n")).toContain("!\tforced");
      expect(proposals(awk, "remote.origin.mirror true\n")).toContain("!\tforced");
      expect(proposals(awk, "remote.origin.mirror\n")).toContain("!\tforced");
    });
  });
}
