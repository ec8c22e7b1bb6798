import { spawn, spawnSync, type SpawnSyncOptions } from "node:child_process";

export interface Variant {
  name: string;
  command: string;
  args: string[];
  options?: SpawnSyncOptions;
  /** Timed even when it exits non-zero (a helper with nothing to answer). */
  allowFailure?: boolean;
}

export interface Timed {
  name: string;
  medianMs: number;
  p10Ms: number;
  p90Ms: number;
  runs: number;
}

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.round((sorted.length - 1) * p)));
  return sorted[i] as number;
}

type Runner = (v: Variant) => Promise<number | null>;

/**
 * Times each variant `runs` times after `warmup` untimed rounds, alternating the variants in a
 * shuffled order every round so that drift on the machine hits all of them alike.
 */
async function measure(variants: Variant[], runs: number, warmup: number, run: Runner): Promise<Timed[]> {
  const samples = variants.map(() => [] as number[]);
  for (let round = -warmup; round < runs; round++) {
    const order = variants.map((_, i) => i).sort(() => Math.random() - 0.5);
    for (const i of order) {
      const v = variants[i] as Variant;
      const start = process.hrtime.bigint();
      const code = await run(v);
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (code !== 0 && !v.allowFailure) throw new Error(`${v.name} failed (${code}): ${v.command} ${v.args.join(" ")}`);
      if (round >= 0) samples[i]?.push(ms);
    }
  }
  return summarize(variants, samples, runs);
}

/** Each process run with spawnSync: the least overhead, for commands that need no server here. */
export function timeAlternating(variants: Variant[], runs: number, warmup = 20): Promise<Timed[]> {
  return measure(variants, runs, warmup, async (v) => spawnSync(v.command, v.args, { stdio: "ignore", ...v.options }).status);
}

/** Each process awaited: for commands that talk to servers living in this process. */
export function timeAlternatingAsync(variants: Variant[], runs: number, warmup = 5): Promise<Timed[]> {
  return measure(
    variants,
    runs,
    warmup,
    (v) =>
      new Promise((resolve) => {
        spawn(v.command, v.args, { stdio: "ignore", cwd: v.options?.cwd, env: v.options?.env }).on("exit", (code) => resolve(code));
      }),
  );
}

function summarize(variants: Variant[], samples: number[][], runs: number): Timed[] {
  return variants.map((v, i) => {
    const sorted = [...(samples[i] as number[])].sort((a, b) => a - b);
    return { name: v.name, medianMs: percentile(sorted, 0.5), p10Ms: percentile(sorted, 0.1), p90Ms: percentile(sorted, 0.9), runs };
  });
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return percentile(sorted, 0.5);
}
