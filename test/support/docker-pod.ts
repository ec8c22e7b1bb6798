import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { parseAllDocuments } from "yaml";
import { skipBecause, toolPath } from "./require-tool.ts";
import { REPO_ROOT } from "./run-git.ts";

/** The tag the tests build the project's Dockerfile as. */
export const KEEPER_IMAGE = "git-token-keeper:0.1.0";
const BASE_IMAGES = ["node:24-bookworm-slim", "buildpack-deps:bookworm-scm"];

/**
 * Whether a docker engine answers and the local stand-ins for the base images exist (no image
 * can be pulled here; `.ci/base-image.sh` builds them). Outside CI a missing piece is a skip.
 */
export function dockerReady(): boolean {
  if (!toolPath("docker")) return !skipBecause("docker is not installed; .ci/run installs Debian's docker.io and starts dockerd");
  try {
    execFileSync("docker", ["info"], { stdio: "ignore", timeout: 20_000 });
  } catch {
    return !skipBecause("no docker engine answers; .ci/run starts dockerd");
  }
  const missing = BASE_IMAGES.filter((image) => {
    try {
      execFileSync("docker", ["image", "inspect", image], { stdio: "ignore" });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length) return !skipBecause(`the base images ${missing.join(", ")} are missing; .ci/run builds them with .ci/base-image.sh`);
  return true;
}

/** Builds the project's Dockerfile as users do (the host network: the registry is reached from it). */
export async function buildKeeperImage(): Promise<void> {
  await execa("docker", ["build", "--network", "host", "-q", "-t", KEEPER_IMAGE, REPO_ROOT], { timeout: 600_000 });
}

export async function docker(args: string[], options: { input?: string; reject?: boolean; timeoutMs?: number } = {}): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await execa("docker", args, { reject: false, timeout: options.timeoutMs ?? 120_000, input: options.input ?? "" });
  const result = { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  if (options.reject !== false && result.exitCode !== 0) throw new Error(`docker ${args.slice(0, 3).join(" ")} failed (${result.exitCode}):\n${result.stderr}`);
  return result;
}

interface HttpProbe {
  path: string;
  port: number | string;
  scheme?: string;
}

interface ContainerSpec {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value: string }[];
  restartPolicy?: string;
  securityContext?: {
    runAsUser?: number;
    runAsGroup?: number;
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[] };
  };
  startupProbe?: { exec: { command: string[] } };
  livenessProbe?: { httpGet?: HttpProbe };
  readinessProbe?: { httpGet?: HttpProbe };
  resources?: { limits?: { memory?: string } };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
}

interface PodSpec {
  securityContext?: { fsGroup?: number; runAsUser?: number; runAsGroup?: number };
  volumes: { name: string }[];
  initContainers?: ContainerSpec[];
  containers: ContainerSpec[];
}

/**
 * A pod manifest from deploy/kubernetes run with docker, as the kubelet would run it, so that
 * the test runs the file users apply: each container's image, command, args, env, user, group,
 * fsGroup (as a supplementary group), read-only root, dropped capabilities, no new privileges,
 * memory limit and volume mounts. Volumes are host folders the test prepares (one per volume
 * name); images map to local tags; every container shares the host's network (the fakes listen
 * on its loopback). Each container runs in a PID namespace of its own, as in a pod.
 */
export class DockerPod {
  readonly spec: PodSpec;
  readonly #prefix: string;
  readonly #volumes: Record<string, string>;
  readonly #images: Record<string, string>;
  readonly #started: string[] = [];

  constructor(manifest: string, options: { prefix: string; volumes: Record<string, string>; images: Record<string, string> }) {
    // The file's Pod, or a Deployment's pod template (the broker).
    const docs = parseAllDocuments(readFileSync(join(REPO_ROOT, manifest), "utf8")).map((d) => d.toJS() as { kind: string; spec: { template?: { spec: PodSpec } } & PodSpec });
    const doc = docs.find((d) => d.kind === "Pod" || d.kind === "Deployment");
    if (!doc) throw new Error(`no Pod or Deployment in ${manifest}`);
    this.spec = doc.kind === "Deployment" ? (doc.spec.template?.spec as PodSpec) : doc.spec;
    this.#prefix = options.prefix;
    this.#volumes = options.volumes;
    this.#images = options.images;
    for (const volume of this.spec.volumes) {
      if (!this.#volumes[volume.name]) throw new Error(`no host folder for volume ${volume.name}`);
    }
  }

  /** The host folder behind a volume. */
  volume(name: string): string {
    return this.#volumes[name] as string;
  }

  container(name: string): ContainerSpec {
    const found = [...(this.spec.initContainers ?? []), ...this.spec.containers].find((c) => c.name === name);
    if (!found) throw new Error(`no container ${name} in the pod`);
    return found;
  }

  containerName(name: string): string {
    return `${this.#prefix}-${name}`;
  }

  /** `docker run` arguments for a container; `command` replaces the manifest's command and args. */
  runArgs(name: string, extra: { detach?: boolean; command?: string[]; dockerFlags?: string[]; as?: string } = {}): string[] {
    const c = this.container(name);
    // A container's own securityContext over the pod's (runAsUser and runAsGroup may be either).
    const sc = { runAsUser: this.spec.securityContext?.runAsUser, runAsGroup: this.spec.securityContext?.runAsGroup, ...c.securityContext };
    const flags = ["run", "--name", this.containerName(extra.as ?? name), "--network", "host", ...(extra.detach ? ["-d"] : [])];
    if (sc.runAsUser !== undefined) flags.push("--user", sc.runAsGroup !== undefined ? `${sc.runAsUser}:${sc.runAsGroup}` : String(sc.runAsUser));
    if (this.spec.securityContext?.fsGroup !== undefined) flags.push("--group-add", String(this.spec.securityContext.fsGroup));
    if (sc.readOnlyRootFilesystem) flags.push("--read-only");
    if (sc.allowPrivilegeEscalation === false) flags.push("--security-opt", "no-new-privileges");
    for (const cap of sc.capabilities?.drop ?? []) flags.push("--cap-drop", cap);
    const memory = c.resources?.limits?.memory;
    if (memory) flags.push("--memory", memory.replace(/Mi$/, "m").replace(/Gi$/, "g"));
    for (const e of c.env ?? []) flags.push("-e", `${e.name}=${e.value}`);
    for (const m of c.volumeMounts ?? []) flags.push("-v", `${this.#volumes[m.name]}${m.subPath ? `/${m.subPath}` : ""}:${m.mountPath}${m.readOnly ? ":ro" : ""}`);
    flags.push(...(extra.dockerFlags ?? []));
    const command = extra.command ?? c.command;
    if (command) flags.push("--entrypoint", command[0] as string);
    flags.push(this.#images[c.image] ?? c.image);
    if (command) flags.push(...command.slice(1));
    if (!extra.command) flags.push(...(c.args ?? []));
    return flags;
  }

  /** Runs a container to completion (an init container, or a build step): its exit code and output. */
  async run(name: string, extra: { dockerFlags?: string[] } = {}) {
    this.#started.push(this.containerName(name));
    return docker(this.runArgs(name, extra), { reject: false });
  }

  /** Starts a container in the background (a native sidecar: then waits for its startup probe). */
  async start(name: string, extra: { command?: string[]; dockerFlags?: string[]; as?: string } = {}): Promise<void> {
    this.#started.push(this.containerName(extra.as ?? name));
    await docker(this.runArgs(name, { ...extra, detach: true }));
    const probe = this.container(name).startupProbe?.exec.command;
    if (!probe || extra.as) return;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const r = await this.exec(name, probe, { reject: false });
      if (r.exitCode === 0) return;
      if (Date.now() > deadline) throw new Error(`${name}: startup probe never passed:\n${r.stdout}${r.stderr}\n${await this.logs(name)}`);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  }

  exec(name: string, argv: string[], options: { env?: Record<string, string>; reject?: boolean; workdir?: string } = {}) {
    const env = Object.entries(options.env ?? {}).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
    return docker(["exec", ...env, ...(options.workdir ? ["-w", options.workdir] : []), this.containerName(name), ...argv], { reject: options.reject });
  }

  async logs(name: string): Promise<string> {
    const r = await docker(["logs", this.containerName(name)], { reject: false });
    return r.stdout + r.stderr;
  }

  async stop(name: string): Promise<void> {
    await docker(["stop", "-t", "10", this.containerName(name)], { reject: false });
  }

  async remove(): Promise<void> {
    if (this.#started.length) await docker(["rm", "-f", ...this.#started], { reject: false });
  }
}
