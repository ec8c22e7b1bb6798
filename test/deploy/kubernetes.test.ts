import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Deployment } from "kubernetes-models/apps/v1";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ClusterRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1";
import { ConfigMap, Pod, Service, ServiceAccount } from "kubernetes-models/v1";
import { isMap, isSeq, parseAllDocuments } from "yaml";
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

const KINDS: Record<string, new (m: never) => { validate(): void }> = { Pod, ConfigMap, Deployment, Service, ServiceAccount, PodDisruptionBudget, NetworkPolicy, ClusterRoleBinding };

function validate(m: Manifest): void {
  const Kind = KINDS[m.kind];
  if (!Kind) throw new Error(`no schema for kind ${m.kind}`);
  new Kind(m as never).validate();
}

/** The broker's manifests: each kind, the Deployment's pod and container, and its config as the broker reads it. */
function broker() {
  const all = manifests("broker/broker.yaml") as unknown as Record<string, any>[];
  const byKind = (kind: string) => all.find((m) => m.kind === kind)!;
  const deployment = byKind("Deployment");
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  const raw = parseAllDocuments(byKind("ConfigMap").data["broker.yaml"])[0]!.toJS();
  const parsed = brokerSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`the broker's ConfigMap: ${JSON.stringify(parsed.error.issues)}`);
  return { byKind, deployment, pod, container, raw, config: parsed.data };
}

/** A Kubernetes memory quantity (`384Mi`, `1Gi`, `500M`) in bytes. */
function bytes(quantity: string): number {
  const m = /^(\d+)(Ki|Mi|Gi|k|M|G)?$/.exec(quantity);
  if (!m) throw new Error(`not a memory quantity: ${quantity}`);
  const unit: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, k: 1e3, M: 1e6, G: 1e9 };
  return Number(m[1]) * (m[2] ? (unit[m[2]] as number) : 1);
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

  it("the broker: a Deployment of 2+ replicas, liveness on /livez and readiness on /readyz over HTTPS, the key and TLS from Secrets, a Service, a PodDisruptionBudget and a NetworkPolicy selecting it", () => {
    const { byKind, deployment, container, raw, config } = broker();
    const labels = deployment.spec.template.metadata.labels;
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
    expect(container.args.slice(0, 3)).toEqual(["broker", "--config", "/etc/git-token-broker/broker.yaml"]);
    expect(container.livenessProbe.httpGet).toEqual({ path: "/livez", port: "https", scheme: "HTTPS" });
    expect(container.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "https", scheme: "HTTPS" });
    expect(container.ports.find((p: any) => p.name === "https").containerPort).toBe(Number(config.listen.split(":").at(-1)));
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    const secrets = deployment.spec.template.spec.volumes.filter((v: any) => v.secret).map((v: any) => v.secret.secretName);
    expect(secrets).toEqual(expect.arrayContaining(["git-token-broker-app-key", "git-token-broker-tls"]));
    for (const kind of ["Service", "PodDisruptionBudget"]) expect(Object.entries(byKind(kind).spec.selector.matchLabels ?? byKind(kind).spec.selector)).toEqual(Object.entries(labels));
    expect(byKind("NetworkPolicy").spec.podSelector.matchLabels).toEqual(labels);
    // Every file the config names is mounted where it says.
    const mounts = container.volumeMounts.map((m: any) => m.mountPath);
    for (const file of [config.tls!.certFile, config.tls!.keyFile, (raw.providers[0] as { privateKeyFile: string }).privateKeyFile]) {
      expect(mounts.some((m: string) => file.startsWith(`${m}/`)), file).toBe(true);
    }
  });

  it("the broker: replicas on different nodes or not scheduled, and a PodDisruptionBudget keeping one up", () => {
    const { byKind, deployment, pod } = broker();
    expect(pod.topologySpreadConstraints).toContainEqual({ maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "DoNotSchedule", labelSelector: { matchLabels: deployment.spec.template.metadata.labels } });
    expect(byKind("PodDisruptionBudget").spec.minAvailable).toBe(1);
  });

  it("the broker: the memory limit holds maxConnections idle TLS connections (~56 KB each), ~100 MB base, and half again for garbage between collections", () => {
    const { container, config } = broker();
    const need = 100 * 2 ** 20 + config.maxConnections * 56 * 2 ** 10;
    expect(bytes(container.resources.limits.memory)).toBeGreaterThanOrEqual(need * 1.5);
  });

  it("the broker: /metrics on a container port of its own, open to the monitoring namespace only; the token port to ci only", () => {
    const { byKind, container, config } = broker();
    const metrics = container.ports.find((p: any) => p.name === "metrics");
    expect(config.metricsListen).toBe(`0.0.0.0:${metrics?.containerPort}`);
    const port = (p: number | string) => (typeof p === "number" ? p : container.ports.find((c: any) => c.name === p).containerPort);
    const ingress = byKind("NetworkPolicy").spec.ingress.map((rule: any) => ({
      from: rule.from.map((f: any) => Object.keys(f).length === 1 && f.namespaceSelector?.matchLabels["kubernetes.io/metadata.name"]),
      ports: rule.ports.map((p: any) => `${port(p.port)}/${p.protocol}`),
    }));
    expect(ingress).toEqual([
      { from: ["ci"], ports: [`${port("https")}/TCP`] },
      { from: ["monitoring"], ports: [`${metrics.containerPort}/TCP`] },
    ]);
  });

  it("the broker: egress to DNS in kube-system, HTTPS anywhere but the metadata service, and the API server's port; every rule says what it is for", () => {
    const { byKind } = broker();
    const egress = byKind("NetworkPolicy").spec.egress as { to?: any[]; ports?: { port: number; protocol: string }[] }[];
    const ports = (rule: (typeof egress)[number]) => (rule.ports ?? []).map((p) => `${p.port}/${p.protocol}`).sort();
    // No rule without ports or destinations: each names what it reaches.
    for (const rule of egress) {
      expect(rule.ports?.length).toBeGreaterThan(0);
      expect(rule.to?.length).toBeGreaterThan(0);
    }
    const dns = egress.find((r) => ports(r).includes("53/UDP"))!;
    expect(ports(dns)).toEqual(["53/TCP", "53/UDP"]);
    expect(dns.to).toEqual([{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } } }]);
    expect(egress.flatMap(ports).sort()).toEqual(["443/TCP", "53/TCP", "53/UDP", "6443/TCP"]);
    // Whatever reaches addresses by block never reaches link-local, where the metadata service is.
    for (const rule of egress) {
      for (const to of rule.to!.filter((t) => t.ipBlock?.cidr === "0.0.0.0/0")) expect(to.ipBlock.except).toContain("169.254.0.0/16");
    }
    // A comment above every rule, in and out (the parser gives the first one to the list).
    const doc = parseAllDocuments(readFileSync(join(DIR, "broker/broker.yaml"), "utf8")).find((d) => d.get("kind") === "NetworkPolicy")!;
    for (const key of ["ingress", "egress"]) {
      const rules = doc.getIn(["spec", key]);
      if (!isSeq(rules)) throw new Error(`spec.${key} is not a list`);
      for (const [i, rule] of rules.items.entries()) {
        const comment = isMap(rule) ? (rule.commentBefore ?? (i === 0 ? rules.commentBefore : undefined)) : undefined;
        expect(comment?.trim(), `spec.${key}[${i}] has no comment above it`).toBeTruthy();
      }
    }
  });

  it("the broker reads the cluster issuer's keys as a stock cluster allows: its own short-lived projected token for the API server and the cluster's CA, not the automounted token", () => {
    const { byKind, pod, container, config } = broker();
    expect(pod.automountServiceAccountToken ?? byKind("ServiceAccount").automountServiceAccountToken).toBe(false);
    expect(byKind("ServiceAccount").automountServiceAccountToken).toBe(false);
    const volume = pod.volumes.find((v: any) => v.projected?.sources.some((s: any) => s.serviceAccountToken));
    const sources = volume.projected.sources;
    const token = sources.find((s: any) => s.serviceAccountToken).serviceAccountToken;
    // No audience: the API server's own, the one it accepts. Short: the least the API allows.
    expect(token.audience).toBeUndefined();
    expect(token.expirationSeconds).toBe(600);
    const ca = sources.find((s: any) => s.configMap?.name === "kube-root-ca.crt").configMap.items.find((i: any) => i.key === "ca.crt");
    const mount = container.volumeMounts.find((m: any) => m.name === volume.name).mountPath;
    const identity = config.identities.find((i) => i.name === config.policies[0]!.identity)!;
    expect(identity).toMatchObject({ jwksUrl: "https://kubernetes.default.svc/openid/v1/jwks", jwksTokenFile: `${mount}/${token.path}`, jwksCaFile: `${mount}/${ca.path}` });
    // Trust in the cluster's CA goes to the JWKS fetch only, not to every HTTPS call.
    expect(container.env ?? []).not.toContainEqual(expect.objectContaining({ name: "NODE_EXTRA_CA_CERTS" }));
  });

  it("broker/issuer-discovery.yaml binds system:service-account-issuer-discovery to the broker's service account, for clusters without the stock binding", () => {
    const { deployment } = broker();
    const [binding] = manifests("broker/issuer-discovery.yaml") as unknown as Record<string, any>[];
    expect(binding!.kind).toBe("ClusterRoleBinding");
    expect(binding!.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "system:service-account-issuer-discovery" });
    expect(binding!.subjects).toEqual([{ kind: "ServiceAccount", name: deployment.spec.template.spec.serviceAccountName, namespace: deployment.metadata.namespace }]);
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
