/** Latency summaries and ratios, the same way for the system and its baselines. */

export interface LatencySummary {
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
}

/** Nearest-rank percentile (the value below which p% of the samples lie); null without samples. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function summarize(latenciesMs: readonly number[]): LatencySummary {
  const round = (value: number | null) => (value === null ? null : Math.round(value * 10) / 10);
  return {
    count: latenciesMs.length,
    p50: round(percentile(latenciesMs, 50)),
    p95: round(percentile(latenciesMs, 95)),
    p99: round(percentile(latenciesMs, 99)),
    max: round(latenciesMs.length ? Math.max(...latenciesMs) : null),
  };
}

/** a / b to two decimals, or null when either side is missing. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined || b === 0 || !Number.isFinite(a) || !Number.isFinite(b)) return null;
  return Math.round((a / b) * 100) / 100;
}

export function perSecond(count: number, ms: number): number | null {
  return ms > 0 ? Math.round((count / (ms / 1000)) * 10) / 10 : null;
}

export const now = (): number => performance.now();

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
