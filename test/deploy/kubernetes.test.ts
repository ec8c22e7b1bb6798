import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigMap, Pod } from "kubernetes-models/v1";
import { parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import { configSchema } from "../../src/config/config-schema.ts";
import { REPO_ROOT } from "../support/run-git.ts";

const DIR = join(REPO_ROOT, "deploy", "kubernetes");

type Manifest = { kind: string; spec?: Record<string, unknown>; data?: Record<string, string> };

// Kubernetes reads manifests as YAML 1.1: `0440` is octal there.
function manifests(file: string): Manifest[] {
  return parseAllDocuments(readFileSync(join(DIR, file), "utf8"), { version: "1.1", merge: true }).map((d) => d.toJS() as Manifest);
}

function validate(m: Manifest): void {
  if (m.kind === "Pod") new Pod(m as never).validate();
  else if (m.kind === "ConfigMap") new ConfigMap(m as never).validate();
  else throw new Error(`no schema for kind ${m.kind}`);
}

interface C {
  name: string;
  restartPolicy?: string;
  env?: { name: string; value: string }[];
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string }[];
}

describe("Kubernetes manifests", () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith(".yaml"));

  it.each(files)("%s validates against the Kubernetes schemas", (file) => {
    for (const m of manifests(file)) validate(m);
  });

  it("the validator bites: a broken pod is rejected", () => {
    const [pod] = manifests("build-pod.yaml");
    const broken = structuredClone(pod!) as unknown as { spec: { containers: { image: unknown }[] } };
    broken.spec.containers[0]!.image = 42;
    expect(() => validate(broken as unknown as Manifest)).toThrow();
  });

  it.each(["build-pod.yaml", "jenkins-pod-template.yaml"])("%s runs the keeper as a native sidecar sharing an in-memory state dir", (file) => {
    const [pod] = manifests(file) as unknown as { spec: { initContainers: C[]; containers: C[]; volumes: { name: string; emptyDir?: { medium?: string } }[]; securityContext: { fsGroup: number } } }[];
    const spec = pod!.spec;
    const sidecar = spec.initContainers.find((c) => c.name === "git-token-keeper")!;
    expect(sidecar.restartPolicy).toBe("Always");
    expect(spec.initContainers[0]!.name).toBe("install-shim");
    expect(spec.volumes.find((v) => v.name === "keeper-state")?.emptyDir?.medium).toBe("Memory");
    for (const c of spec.initContainers) {
      expect(c.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    }
    const stateDir = sidecar.env?.find((e) => e.name === "GIT_TOKEN_KEEPER_DIR")?.value;
    for (const c of spec.containers) {
      expect(c.env?.find((e) => e.name === "PATH")?.value).toMatch(/^\/opt\/git-token-keeper\/shim:/);
      expect(c.env?.find((e) => e.name === "GIT_TOKEN_KEEPER_DIR")?.value).toBe(stateDir);
      expect(c.volumeMounts?.map((v) => v.name)).toEqual(expect.arrayContaining(["keeper-state", "keeper-shim"]));
    }
    expect(spec.securityContext.fsGroup).toBe(1000);
  });

  it("the ConfigMap holds a valid keeper config sharing the state dir with the pod's fsGroup", () => {
    const [cm] = manifests("config.yaml");
    const parsed = configSchema.safeParse(parseAllDocuments(cm!.data!["config.yaml"]!)[0]!.toJS());
    expect(parsed.success).toBe(true);
    expect(parsed.data?.stateGroup).toBe(1000);
  });
});
