import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Deployment } from "kubernetes-models/apps/v1";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ConfigMap, Pod, Service, ServiceAccount } from "kubernetes-models/v1";
import { parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import { brokerSchema } from "../../src/config/broker-config.ts";
import { configSchema } from "../../src/config/config-schema.ts";
import { REPO_ROOT } from "../support/run-git.ts";

const DIR = join(REPO_ROOT, "deploy", "kubernetes");

type Manifest = { kind: string; spec?: Record<string, unknown>; data?: Record<string, string> };

// Kubernetes reads manifests as YAML 1.1: `0440` is octal there.
function manifests(file: string): Manifest[] {
  return parseAllDocuments(readFileSync(join(DIR, file), "utf8"), { version: "1.1", merge: true }).map((d) => d.toJS() as Manifest);
}

const KINDS: Record<string, new (m: never) => { validate(): void }> = { Pod, ConfigMap, Deployment, Service, ServiceAccount, PodDisruptionBudget, NetworkPolicy };

function validate(m: Manifest): void {
  const Kind = KINDS[m.kind];
  if (!Kind) throw new Error(`no schema for kind ${m.kind}`);
  new Kind(m as never).validate();
}

interface C {
  name: string;
  restartPolicy?: string;
  env?: { name: string; value: string }[];
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string }[];
}

describe("Kubernetes manifests", () => {
  const files = [...readdirSync(DIR).filter((f) => f.endsWith(".yaml")), ...readdirSync(join(DIR, "broker")).map((f) => `broker/${f}`)];

  it.each(files)("%s validates against the Kubernetes schemas", (file) => {
    for (const m of manifests(file)) validate(m);
  });

  it("the validator bites: a broken pod is rejected", () => {
    const [pod] = manifests("build-pod.yaml");
    const broken = structuredClone(pod!) as unknown as { spec: { containers: { image: unknown }[] } };
    broken.spec.containers[0]!.image = 42;
    expect(() => validate(broken as unknown as Manifest)).toThrow();
  });

  it.each(["build-pod.yaml", "jenkins-pod-template.yaml", "broker/build-pod.yaml", "broker/jenkins-pod-template.yaml"])("%s runs the keeper as a native sidecar sharing an in-memory state dir", (file) => {
    const [pod] = manifests(file).filter((m) => m.kind === "Pod") as unknown as { spec: { initContainers: C[]; containers: C[]; volumes: { name: string; emptyDir?: { medium?: string } }[]; securityContext: { fsGroup: number } } }[];
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

  it("the broker: a Deployment of 2+ replicas with probes on /healthz over HTTPS, the key and TLS from Secrets, a Service, a PodDisruptionBudget and a NetworkPolicy selecting it", () => {
    const all = manifests("broker/broker.yaml") as unknown as Record<string, any>[];
    const byKind = (kind: string) => all.find((m) => m.kind === kind)!;
    const deployment = byKind("Deployment");
    const labels = deployment.spec.template.metadata.labels;
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
    const container = deployment.spec.template.spec.containers[0];
    expect(container.args.slice(0, 3)).toEqual(["broker", "--config", "/etc/git-token-broker/broker.yaml"]);
    for (const probe of [container.readinessProbe, container.livenessProbe]) expect(probe.httpGet).toMatchObject({ path: "/healthz", scheme: "HTTPS" });
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    const secrets = deployment.spec.template.spec.volumes.filter((v: any) => v.secret).map((v: any) => v.secret.secretName);
    expect(secrets).toEqual(expect.arrayContaining(["git-token-broker-app-key", "git-token-broker-tls"]));
    for (const kind of ["Service", "PodDisruptionBudget"]) expect(Object.entries(byKind(kind).spec.selector.matchLabels ?? byKind(kind).spec.selector)).toEqual(Object.entries(labels));
    expect(byKind("PodDisruptionBudget").spec.minAvailable).toBe(1);
    expect(byKind("NetworkPolicy").spec.podSelector.matchLabels).toEqual(labels);
    const config = parseAllDocuments(byKind("ConfigMap").data["broker.yaml"])[0]!.toJS();
    const parsed = brokerSchema.safeParse(config);
    expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
    // Every file the config names is mounted where it says.
    const mounts = container.volumeMounts.map((m: any) => m.mountPath);
    for (const file of [parsed.data!.tls!.certFile, parsed.data!.tls!.keyFile, (config.providers[0] as { privateKeyFile: string }).privateKeyFile]) {
      expect(mounts.some((m: string) => file.startsWith(`${m}/`)), file).toBe(true);
    }
  });

  it.each(["broker/build-pod.yaml", "broker/jenkins-pod-template.yaml"])("%s: the keeper proves a projected service-account token for the broker's audience, and holds no key", (file) => {
    const pod = manifests(file).find((m) => m.kind === "Pod") as unknown as Record<string, any>;
    const identity = pod.spec.volumes.find((v: any) => v.projected)?.projected.sources[0].serviceAccountToken;
    expect(identity).toMatchObject({ audience: "git-token-keeper", path: "git-token-keeper" });
    expect(pod.spec.volumes.some((v: any) => v.secret)).toBe(false);
    const keeper = pod.spec.initContainers.find((c: any) => c.name === "git-token-keeper");
    const mount = keeper.volumeMounts.find((m: any) => m.name === pod.spec.volumes.find((v: any) => v.projected).name).mountPath;
    const [cm] = manifests("broker/build-pod.yaml").filter((m) => m.kind === "ConfigMap");
    const config = configSchema.safeParse(parseAllDocuments(cm!.data!["config.yaml"]!)[0]!.toJS());
    expect(config.success).toBe(true);
    const provider = config.data!.providers[0] as { type: string; identityTokenFile: string };
    expect(provider.type).toBe("broker");
    expect(provider.identityTokenFile).toBe(`${mount}/git-token-keeper`);
  });
});
