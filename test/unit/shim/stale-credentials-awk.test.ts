import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { haveTool } from "../../support/require-tool.ts";
import { SHIM_DIR } from "../../support/run-git.ts";

// The program as the shim gets it: by sourcing the file that holds it.
const PROGRAM = execFileSync("sh", ["-c", '. "$1" && printf %s "$gtk_stale_awk"', "sh", join(SHIM_DIR, "stale-credentials-awk.sh")], { encoding: "utf8" });
const H = "https://git.example";

/** The awks the shim meets: the system's awk (mawk on Debian), and busybox's where present. */
const awks: [string, string[]][] = [["awk", ["awk"]]];
if (haveTool("busybox", "busybox is not installed, so its awk is not tested")) awks.push(["busybox awk", ["busybox", "awk"]]);

function proposals(awk: string[], input: string, served = `${H}/acme/`): string[] {
  const [cmd, ...pre] = awk as [string, ...string[]];
  const out = execFileSync(cmd, [...pre, "-v", `served=${served}`, "-v", "helper=/shim/helper", PROGRAM, "-"], { input, encoding: "utf8" });
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

    it("a forcing push refspec or a mirror remote is reported for the retry policy", () => {
      expect(proposals(awk, "remote.origin.push +refs/heads/*:refs/heads/*\n")).toContain("!\tforced");
      expect(proposals(awk, "remote.origin.mirror true\n")).toContain("!\tforced");
    });
  });
}
