import { execFileSync } from "node:child_process";
import { get as httpGet, type IncomingMessage } from "node:http";
import { get as httpsGet } from "node:https";
import { createServer, type AddressInfo } from "node:net";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { FakeOidcIssuer } from "../fakes/fake-oidc-issuer.ts";
import { makeTestCa } from "../support/test-ca.ts";
import { buildKeeperImage, docker, DockerPod, dockerReady, KEEPER_IMAGE } from "../support/docker-pod.ts";
import { REPO_ROOT, SHIM_DIR } from "../support/run-git.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { World } from "../support/world.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A TCP port nothing listens on now (the containers share the host's network). */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const p = (server.address() as AddressInfo).port;
      server.close(() => resolve(p));
    });
  });
}

/** A GET's status and body; `ca` is trusted for https:// URLs. */
function get(url: string, options: { ca?: Buffer; authorization?: string } = {}): Promise<{ status: number; body: string }> {
  const headers = options.authorization ? { authorization: options.authorization } : {};
  return new Promise((resolve, reject) => {
    const done = (res: IncomingMessage) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    };
    (url.startsWith("https:") ? httpsGet(url, { ca: options.ca, headers }, done) : httpGet(url, { headers }, done)).on("error", reject);
  });
}

const FS_GROUP = 1000;
// Short tokens, so that "the keeper stopped and its token expired" is seconds away.
const LIFETIME_MS = 20_000;
const SCM_IMAGE = "buildpack-deps:bookworm-scm";
const IMAGES = { "git-token-keeper:0.1.0": KEEPER_IMAGE, "buildpack-deps:bookworm-scm": SCM_IMAGE, "jenkins/inbound-agent:jdk21": SCM_IMAGE, "maven:3-eclipse-temurin-21": SCM_IMAGE };
const root = process.getuid?.() === 0;
const ready = root && dockerReady();
const mounts: string[] = [];

/** A host folder standing in for an emptyDir: a tmpfs for medium: Memory, owned by the pod's fsGroup like the kubelet makes it. */
function emptyDir(memory: boolean): string {
  const dir = tempDir("gtk-pod-");
  if (memory) {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=16m,mode=2777,gid=${FS_GROUP}`, "tmpfs", dir]);
    mounts.push(dir);
  } else {
    chownSync(dir, 0, FS_GROUP);
    chmodSync(dir, 0o2777);
  }
  return dir;
}

/** The ConfigMap's config.yaml, pointed at the fakes. */
function configFromConfigMap(world: World, extraProviders: unknown[] = []): string {
  const configMap = parse(readFileSync(join(REPO_ROOT, "deploy/kubernetes/config.yaml"), "utf8")) as { data: { "config.yaml": string } };
  const config = parse(configMap.data["config.yaml"]) as { providers: unknown[] };
  config.providers = [{ ...(config.providers[0] as Record<string, unknown>), appId: world.github.appId, apiUrl: world.github.url, gitUrl: world.gitUrl, owners: ["acme", "globex"] }, ...extraProviders];
  const dir = tempDir("gtk-pod-config-");
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, "config.yaml"), JSON.stringify(config, null, 2), { mode: 0o644 });
  return dir;
}

/** The Secret's volume: the key with defaultMode 0440, group-owned by the fsGroup as the kubelet does. */
function secretVolume(world: World, mode: number, uid: number, gid: number): string {
  const dir = tempDir("gtk-pod-key-");
  chmodSync(dir, 0o755);
  const key = join(dir, "app.pem");
  writeFileSync(key, readFileSync(world.keyFile));
  chownSync(key, uid, gid);
  chmodSync(key, mode);
  return dir;
}

async function healthStatus(container: string): Promise<string> {
  return (await docker(["inspect", "-f", "{{.State.Health.Status}}", container])).stdout.trim();
}

async function waitHealthy(container: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while ((await healthStatus(container)) !== "healthy") {
    if (Date.now() > deadline) throw new Error(`${container} never turned healthy:\n${(await docker(["logs", container], { reject: false })).stderr}`);
    await sleep(500);
  }
}

afterAll(() => {
  for (const dir of mounts) execFileSync("umount", ["-l", dir]);
  removeTempDirs();
});

describe.skipIf(!ready)("deploy/kubernetes/build-pod.yaml, run with docker: the keeper as a sidecar in its own container", () => {
  let world: World;
  let pod: DockerPod;
  let jenkins: DockerPod;
  const url = () => world.repoUrl("acme/app");

  beforeAll(async () => {
    await buildKeeperImage();
    world = await World.create({ tokenLifetimeMs: LIFETIME_MS });
    const volumes = {
      "keeper-state": emptyDir(true),
      "keeper-shim": emptyDir(true),
      workspace: emptyDir(false),
      "keeper-config": configFromConfigMap(world),
      "keeper-key": secretVolume(world, 0o440, 0, FS_GROUP),
    };
    const prefix = `gtk-test-${process.pid}`;
    pod = new DockerPod("deploy/kubernetes/build-pod.yaml", { prefix, volumes, images: IMAGES });
    jenkins = new DockerPod("deploy/kubernetes/jenkins-pod-template.yaml", { prefix: `${prefix}-jenkins`, volumes, images: IMAGES });
  }, 900_000);

  afterAll(async () => {
    await pod?.remove();
    await jenkins?.remove();
    await world?.close();
  });

  const build = (script: string, options: { env?: Record<string, string> } = {}) => pod.exec("build-shell", ["sh", "-c", script], { ...options, reject: false, workdir: "/work" });

  it("install-shim copies the shim into the shared volume", async () => {
    const r = await pod.run("install-shim");
    expect(r.exitCode, r.stderr).toBe(0);
    expect(statSync(join(pod.volume("keeper-shim"), "git")).mode & 0o111).not.toBe(0);
    // Every part of the shim, its awk program (stale-credentials.awk) included: without it the build's git would get
    // no overrides of stale credentials.
    expect(readdirSync(pod.volume("keeper-shim")).sort()).toEqual(readdirSync(SHIM_DIR).sort());
  });

  it("the keeper starts read-only as uid 10001 without capabilities; its startup probe and the image's HEALTHCHECK pass; the 0440 key is not warned about", async () => {
    await pod.start("git-token-keeper", { dockerFlags: ["--health-interval=1s", "--health-start-period=1s"] });
    await waitHealthy(pod.containerName("git-token-keeper"));
    const logs = await pod.logs("git-token-keeper");
    expect(logs).toContain('"message":"ready"');
    expect(logs).not.toMatch(/readable by|open to every user/);
    const state = statSync(join(pod.volume("keeper-state"), "state"));
    expect([state.uid, state.gid, state.mode & 0o777]).toEqual([10001, FS_GROUP, 0o750]);
  });

  it("the build container's own command (another uid, its own PID namespace) clones through the shim", async () => {
    const r = await pod.run("build", { dockerFlags: ["-e", `REPO_URL=${url()}`] });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.trim()).toMatch(/^[0-9a-f]{40}$/);
    expect(existsSync(join(pod.volume("workspace"), "app", ".git"))).toBe(true);
  });

  it("plain git in the same container has no credential", async () => {
    await pod.start("build", { command: ["sleep", "infinity"], as: "build-shell" });
    const plain = await build(`/usr/bin/git clone ${url()} plain`, { env: { GIT_TERMINAL_PROMPT: "0" } });
    expect(plain.exitCode).toBe(128);
    expect(plain.stderr).toContain("could not read Username");
  });

  it("push after every token is revoked: the helper's re-mint request crosses containers", async () => {
    world.github.revokeAll();
    const r = await build("cd app && git -c user.name=b -c user.email=b@example.test commit -q --allow-empty -m revoked && git push origin HEAD:main");
    expect(r.stderr).toContain("refused the token; retrying with a new one");
    expect(r.exitCode, r.stderr).toBe(0);
  });

  it("a fetch that hangs, then gets a 502, is retried", async () => {
    world.server.failNext(502, 1, /info\/refs$/, 3_000);
    const r = await build("cd app && git fetch origin");
    expect(r.stderr).toMatch(/transient error; retried after/);
    expect(r.exitCode, r.stderr).toBe(0);
  });

  it("the Jenkins template's jnlp container: the git client's fetch with a stale GIT_ASKPASS succeeds through the shim; plain git fails", async () => {
    await jenkins.start("jnlp", { command: ["sleep", "infinity"] });
    const stale = world.github.issueToken("acme");
    world.github.revokeAll();
    const jnlp = (git: string) =>
      jenkins.exec(
        "jnlp",
        [
          "sh",
          "-c",
          // What the Jenkins git client does for `checkout scm`: init, then fetch with its askpass script.
          `set -e; d=$(mktemp -d); cd "$d"; printf '#!/bin/sh\\necho %s\\n' "$STALE" >askpass.sh; chmod +x askpass.sh; ${git} init -q .; GIT_ASKPASS="$d/askpass.sh" ${git} fetch --no-tags --force --progress -- ${url()} '+refs/heads/*:refs/remotes/origin/*'`,
        ],
        { env: { STALE: stale }, reject: false },
      );
    const plain = await jnlp("/usr/bin/git");
    expect(plain.exitCode).not.toBe(0);
    expect(plain.stderr).toContain("Authentication failed");
    const shim = await jnlp("git");
    expect(shim.exitCode, shim.stderr).toBe(0);
  });

  it("the keeper container stopped and its token expired: git fails at once, naming git-token-keeper and saying it is not running", async () => {
    await pod.stop("git-token-keeper");
    await sleep(LIFETIME_MS + 1_000);
    const r = await build("cd app && git fetch origin");
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/git-token-keeper: .*the daemon is not running/);
    expect(r.stderr).not.toContain("did not answer");
  });
});

describe.skipIf(!ready)("deploy/kubernetes/broker/: the broker's Deployment and two build pods whose keepers hold no key, run with docker", () => {
  let world: World;
  // The API server as the broker meets it: the cluster's service-account issuer, with its JWKS
  // over HTTPS under the cluster's CA, for callers with a token only.
  let apiServer: FakeOidcIssuer;
  let broker: DockerPod;
  const pods: DockerPod[] = [];
  let port = 0;
  let metricsPort = 0;
  let brokerCa = "";
  let projectedToken = "";
  let jwksUrl = "";
  let clusterCaFile = "";
  const url = () => world.repoUrl("acme/app");

  beforeAll(async () => {
    await buildKeeperImage();
    world = await World.create();
    const ca = makeTestCa();
    brokerCa = ca.caFile;
    port = await freePort();
    metricsPort = await freePort();
    // The broker's ConfigMap as it is, but for what docker cannot reach as a cluster would: the
    // API server's host, the fake GitHub, and ports free on the host's network.
    const brokerDocs = parseAllDocuments(readFileSync(join(REPO_ROOT, "deploy/kubernetes/broker/broker.yaml"), "utf8")).map((d) => d.toJS());
    const brokerConfig = parse(brokerDocs.find((d) => d.kind === "ConfigMap").data["broker.yaml"]) as Record<string, any>;
    const identity = brokerConfig.identities[0];
    apiServer = new FakeOidcIssuer({ issuer: identity.issuer });
    const clusterCa = makeTestCa();
    clusterCaFile = clusterCa.caFile;
    await apiServer.start({ tls: clusterCa });
    brokerConfig.listen = `127.0.0.1:${port}`;
    brokerConfig.metricsListen = `127.0.0.1:${metricsPort}`;
    brokerConfig.providers[0] = { ...brokerConfig.providers[0], appId: world.github.appId, apiUrl: world.github.url, gitUrl: world.gitUrl };
    jwksUrl = `${apiServer.url}${new URL(identity.jwksUrl).pathname}`;
    brokerConfig.identities[0] = { ...identity, jwksUrl };
    brokerConfig.policies[0] = { ...brokerConfig.policies[0], gitUrl: world.gitUrl };
    const brokerConfigDir = tempDir("gtk-pod-broker-config-");
    chmodSync(brokerConfigDir, 0o755);
    writeFileSync(join(brokerConfigDir, "broker.yaml"), JSON.stringify(brokerConfig), { mode: 0o644 });
    // Secrets as the kubelet mounts them for uid 10001: the App key and the TLS pair, 0400.
    const tls = tempDir("gtk-pod-tls-");
    chmodSync(tls, 0o755);
    for (const [name, text] of [["tls.crt", ca.cert], ["tls.key", ca.key]] as const) {
      writeFileSync(join(tls, name), text);
      chownSync(join(tls, name), 10001, 10001);
      chmodSync(join(tls, name), 0o400);
    }
    // The projected volume as the kubelet writes it, at the paths the manifest names: the broker's
    // own token for the API server (0600, the pod's uid) and the cluster's CA from kube-root-ca.crt.
    const pod = brokerDocs.find((d) => d.kind === "Deployment").spec.template.spec;
    const projected = pod.volumes.find((v: any) => v.projected?.sources.some((s: any) => s.serviceAccountToken));
    const tokenPath = projected.projected.sources.find((s: any) => s.serviceAccountToken).serviceAccountToken.path as string;
    const caPath = projected.projected.sources.find((s: any) => s.configMap?.name === "kube-root-ca.crt").configMap.items.find((i: any) => i.key === "ca.crt").path as string;
    projectedToken = await apiServer.token({ sub: "system:serviceaccount:git-token-broker:git-token-broker" }, { audience: identity.issuer });
    apiServer.requiredBearer = projectedToken;
    const kubeApi = tempDir("gtk-pod-kube-api-");
    chmodSync(kubeApi, 0o755);
    writeFileSync(join(kubeApi, tokenPath), projectedToken);
    chownSync(join(kubeApi, tokenPath), 10001, 10001);
    chmodSync(join(kubeApi, tokenPath), 0o600);
    writeFileSync(join(kubeApi, caPath), readFileSync(clusterCa.caFile), { mode: 0o644 });
    const prefix = `gtk-test-${process.pid}-broker`;
    broker = new DockerPod("deploy/kubernetes/broker/broker.yaml", {
      prefix,
      volumes: { config: brokerConfigDir, "app-key": secretVolume(world, 0o400, 10001, 10001), tls, [projected.name]: kubeApi },
      images: IMAGES,
    });
    // Two build pods. Each keeper: its ConfigMap pointed at the broker, the broker's CA, and a
    // projected service-account token of its own (what the kubelet writes) in the identity volume.
    const keeperDoc = parseAllDocuments(readFileSync(join(REPO_ROOT, "deploy/kubernetes/broker/build-pod.yaml"), "utf8")).map((d) => d.toJS()).find((d) => d.kind === "ConfigMap");
    const keeperConfig = parse(keeperDoc.data["config.yaml"]) as Record<string, any>;
    keeperConfig.providers[0] = { ...keeperConfig.providers[0], url: `https://localhost:${port}`, gitUrl: world.gitUrl };
    const folder = async (name: string, files: Record<string, string>) => {
      const dir = tempDir(`gtk-pod-${name}-`);
      chmodSync(dir, 0o755);
      for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text, { mode: 0o644 });
      return dir;
    };
    for (const name of ["build-a", "build-b"]) {
      const volumes = {
        "keeper-state": emptyDir(true),
        "keeper-shim": emptyDir(true),
        workspace: emptyDir(false),
        "keeper-config": await folder("keeper-config", { "config.yaml": JSON.stringify(keeperConfig) }),
        "broker-ca": await folder("broker-ca", { "ca.crt": readFileSync(ca.caFile, "utf8") }),
        identity: await folder("identity", { "git-token-keeper": await apiServer.token({ sub: `system:serviceaccount:ci:${name}` }, { expiresIn: "1h" }) }),
      };
      pods.push(new DockerPod("deploy/kubernetes/broker/build-pod.yaml", { prefix: `${prefix}-${name}`, volumes, images: IMAGES }));
    }
  }, 900_000);

  afterAll(async () => {
    for (const p of pods) await p.remove();
    await broker?.remove();
    await apiServer?.stop();
    await world?.close();
  });

  it("the fake API server serves its JWKS only for a bearer token, as a stock API server does", async () => {
    const ca = readFileSync(clusterCaFile);
    expect((await get(jwksUrl, { ca })).status).toBe(401);
    expect((await get(jwksUrl, { ca, authorization: "Bearer someone-else" })).status).toBe(401);
    expect((await get(jwksUrl, { ca, authorization: `Bearer ${projectedToken}` })).status).toBe(200);
  });

  it("the broker container starts read-only as uid 10001; its liveness probe passes, and its readiness probe once it has read the issuer's keys with the projected token", async () => {
    const fetchesBefore = apiServer.requests.length;
    await broker.start("broker");
    const container = broker.container("broker");
    // The probes' requests, as the manifest names them (the pod shares the host's network here).
    const probe = (p: { httpGet?: { path: string; scheme?: string } } | undefined) => get(`${p?.httpGet?.scheme === "HTTPS" ? "https" : "http"}://localhost:${port}${p?.httpGet?.path}`, { ca: readFileSync(brokerCa) });
    const deadline = Date.now() + 60_000;
    let ready = { status: 0, body: "" };
    while (ready.status !== 200) {
      if (Date.now() > deadline) throw new Error(`the broker never turned ready (${ready.status} ${ready.body}):\n${await broker.logs("broker")}`);
      await sleep(500);
      ready = await probe(container.readinessProbe).catch(() => ({ status: 0, body: "" }));
    }
    expect(JSON.parse(ready.body)).toEqual({ ready: true, problems: [] });
    expect(await probe(container.livenessProbe)).toEqual({ status: 200, body: "ok\n" });
    // It read the keys with the token the kubelet would have projected, and with nothing else.
    const fetches = apiServer.requests.slice(fetchesBefore);
    expect(fetches.map((r) => r.path)).toContain(new URL(jwksUrl).pathname);
    for (const r of fetches) expect(r.authorization).toBe(`Bearer ${projectedToken}`);
  });

  it("two build pods whose keepers hold no key: each build container clones and pushes through the shim with the broker's tokens", async () => {
    const before = world.github.mintsFor("acme");
    for (const [i, pod] of pods.entries()) {
      expect((await pod.run("install-shim")).exitCode).toBe(0);
      await pod.start("git-token-keeper");
      const r = await pod.run("build", { dockerFlags: ["-e", `REPO_URL=${url()}`] });
      expect(r.exitCode, `${r.stderr}\n${await pod.logs("git-token-keeper")}`).toBe(0);
      expect(r.stdout.trim()).toMatch(/^[0-9a-f]{40}$/);
      await pod.start("build", { command: ["sleep", "infinity"], as: "build-shell" });
      const push = await pod.exec("build-shell", ["sh", "-c", `cd app && git -c user.name=b -c user.email=b@example.test commit -q --allow-empty -m pod-${i} && git push -q origin HEAD:refs/heads/broker-pod-${i}`], { reject: false, workdir: "/work" });
      expect(push.exitCode, push.stderr).toBe(0);
      // Nothing in the build pod's volumes is a key.
      for (const name of ["keeper-config", "broker-ca", "identity"]) {
        for (const file of readdirSync(pod.volume(name))) expect(readFileSync(join(pod.volume(name), file), "utf8")).not.toMatch(/PRIVATE KEY/);
      }
    }
    // One token for both pods: the broker minted the scope once.
    expect(world.github.mintsFor("acme") - before).toBe(1);
    const logs = await broker.logs("broker");
    for (const name of ["build-a", "build-b"]) expect(logs).toContain(`system:serviceaccount:ci:${name}`);
  });

  it("/metrics on the metrics port counts the pods' allowed requests; the token port does not serve it", async () => {
    const metrics = await get(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(metrics.status).toBe(200);
    const allowed = Number(/^git_token_keeper_broker_requests_total\{decision="allowed"\} (\d+)$/m.exec(metrics.body)?.[1]);
    expect(allowed).toBeGreaterThanOrEqual(pods.length);
    expect((await get(`https://localhost:${port}/metrics`, { ca: readFileSync(brokerCa) })).status).toBe(404);
  });
});

describe.skipIf(!ready)("the image with a plain docker run", () => {
  let world: World;
  let config: string;
  let key: string;
  const name = `gtk-test-${process.pid}-plain`;
  // An exec provider whose command leaves a child behind: it outlives its parent and must be reaped.
  const orphaning = { name: "orphans", type: "exec", gitUrl: "http://127.0.0.1:9", shell: true, command: `sleep 0.3 >/dev/null 2>&1 & echo '{"token":"t0k3n-from-exec","expires_in":3600}'` };

  beforeAll(async () => {
    await buildKeeperImage();
    world = await World.create({ tokenLifetimeMs: 3_600_000 });
    config = configFromConfigMap(world, [orphaning]);
    // The plain layout: no shared group, the key readable by the keeper's uid only.
    writeFileSync(join(config, "config.yaml"), JSON.stringify({ ...JSON.parse(readFileSync(join(config, "config.yaml"), "utf8")), stateGroup: undefined }));
    key = secretVolume(world, 0o400, 10001, 10001);
  }, 900_000);

  afterAll(async () => {
    await docker(["rm", "-f", name, `${name}-no-init`], { reject: false });
    await world?.close();
  });

  const run = (container: string, flags: string[] = []) =>
    docker(["run", "-d", "--name", container, "--network", "host", "--read-only", "--tmpfs", "/run/git-token-keeper", "-v", `${config}:/etc/git-token-keeper:ro`, "-v", `${key}:/var/run/secrets/git-token-keeper:ro`, "--health-interval=1s", ...flags, KEEPER_IMAGE]);

  async function zombies(container: string): Promise<string[]> {
    const r = await docker(["exec", container, "sh", "-c", "cat /proc/[0-9]*/stat 2>/dev/null"]);
    return r.stdout.split("\n").filter((line) => / Z /.test(line));
  }

  it("docker run --read-only --tmpfs /run/git-token-keeper: the default state dir works and the HEALTHCHECK turns healthy", async () => {
    await run(name);
    await waitHealthy(name);
    const status = await docker(["exec", name, "node", "/app/dist/cli/main.js", "status"], { reject: false });
    expect(status.exitCode, status.stdout + status.stderr).toBe(0);
    expect((await docker(["exec", name, "stat", "-c", "%u %a", "/run/git-token-keeper/state"])).stdout.trim()).toBe("10001 700");
  });

  it("the daemon is one process under tini, with the V8 flags `run` gives itself", async () => {
    const r = await docker(["exec", name, "sh", "-c", "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' <\"$f\"; echo; done"]);
    const nodes = r.stdout.split("\n").filter((line) => /^\S*\bnode /.test(line));
    expect(nodes, r.stdout).toHaveLength(1);
    expect(nodes[0]).toContain("--optimize-for-size --no-opt --no-maglev --no-sparkplug");
  });

  it("every provider type's implementation loads from the image's trimmed node_modules", async () => {
    const script = [
      'const registry = await import("/app/dist/providers/provider-registry.js");',
      "await registry.loadProviders(registry.PROVIDER_TYPES.map((type) => ({ type })));",
      'const azure = await import("@azure/identity");',
      'new azure.ClientSecretCredential("tenant", "client", "secret");',
      'new azure.WorkloadIdentityCredential({ tenantId: "tenant", clientId: "client", tokenFilePath: "/dev/null" });',
      'for (const m of ["@octokit/auth-app", "winston", "chokidar", "execa", "node-cron", "prom-client", "yaml", "zod"]) await import(m);',
      'console.log("loaded", registry.PROVIDER_TYPES.join(" "));',
    ].join("\n");
    const r = await docker(["run", "--rm", "--read-only", "--entrypoint", "node", KEEPER_IMAGE, "--input-type=module", "-e", script], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain("loaded github-app azure-devops gitlab exec http file");
  });

  it("tini is PID 1: the exec provider's orphaned children are reaped; with node as PID 1 they stay zombies", async () => {
    await sleep(1_000);
    expect(await zombies(name)).toEqual([]);
    await docker(["run", "-d", "--name", `${name}-no-init`, "--network", "host", "--read-only", "--tmpfs", "/run/git-token-keeper", "-v", `${config}:/etc/git-token-keeper:ro`, "-v", `${key}:/var/run/secrets/git-token-keeper:ro`, "--entrypoint", "node", KEEPER_IMAGE, "/app/dist/cli/main.js", "run"]);
    const deadline = Date.now() + 20_000;
    let found: string[] = [];
    while (!found.length && Date.now() < deadline) {
      await sleep(500);
      found = await zombies(`${name}-no-init`);
    }
    expect(found.length).toBeGreaterThan(0);
  });
});
