import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export interface ImageResults {
  /** Why nothing was measured (no docker engine, no base image), or undefined. */
  skipped?: string;
  imageMb?: number;
  baseMb?: number;
  /** What the Dockerfile adds on top of its base. */
  ownLayersMb?: number;
  layers?: { mb: number; step: string }[];
}

const BASE = "node:24-bookworm-slim";
const TAG = "git-token-keeper:bench";
const root = fileURLToPath(new URL("..", import.meta.url));
const docker = (args: string[]) => execFileSync("docker", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 600_000 }).trim();
const mb = (bytes: string) => Number(bytes) / 1e6;

/** (8) The image: built from the Dockerfile as users build it, its size and its own layers'. */
export function benchImage(): ImageResults {
  try {
    docker(["info"]);
  } catch {
    return { skipped: "no docker engine answers (.ci/run installs docker.io and starts dockerd)" };
  }
  try {
    docker(["image", "inspect", BASE]);
  } catch {
    return { skipped: `the base image ${BASE} is missing (.ci/base-image.sh builds it)` };
  }
  docker(["build", "--network", "host", "-q", "-t", TAG, root]);
  const imageMb = mb(docker(["image", "inspect", "-f", "{{.Size}}", TAG]));
  const baseMb = mb(docker(["image", "inspect", "-f", "{{.Size}}", BASE]));
  const baseLayers = docker(["history", "-q", "--no-trunc", BASE]).split("\n").length;
  const history = docker(["history", "--no-trunc", "--human=false", "--format", "{{.Size}}\t{{.CreatedBy}}", TAG]).split("\n");
  const layers = history
    .slice(0, history.length - baseLayers)
    .map((line) => {
      const [size, step = ""] = line.split("\t");
      const text = step.replace(/^\/bin\/sh -c (#\(nop\) )?/, "").replace(/\s+/g, " ").trim();
      // The classic builder names a COPY by its content hash: its destination says what it is.
      const copy = /^COPY (?:dir|file):[0-9a-f]+ in (\S+)/.exec(text);
      return { mb: mb(size ?? "0"), step: copy ? `COPY … ${copy[1]}` : text.slice(0, 60) };
    })
    .filter((l) => l.mb > 0);
  return { imageMb, baseMb, ownLayersMb: imageMb - baseMb, layers };
}
