/**
 * What a bench run measures, from the command line and the environment:
 *
 *   npm run bench -- --only burst,sequential --burst 200 --sequential 50 --decision 50 \
 *     --held 10000 --held-probe 20 --directory 10000 --timeout 1200 --report .stack/bench-report.json \
 *     --worker process
 *
 * Each count also reads BENCH_<NAME> (BENCH_HELD=2000, BENCH_TIMEOUT=120, BENCH_ONLY=burst); the command
 * line wins. A bare number (`npm run bench -- 200`) is the burst size, as before.
 */

export const SCENARIOS = ['sequential', 'decision', 'burst', 'held', 'directory'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface BenchOptions {
  only: ScenarioName[];
  burst: number;
  sequential: number;
  decision: number;
  held: number;
  heldProbe: number;
  directory: number;
  /** The longest wait of one scenario, in seconds; past it the scenario reports what it got. */
  timeoutSeconds: number;
  /** PostgreSQL's plain insert baseline: rows per INSERT statement. */
  insertBatch: number;
  reportPath: string;
  /** The worker in its own process, as production runs it (default), or in the bench's process. */
  worker: 'process' | 'in-process';
}

const DEFAULTS: Omit<BenchOptions, 'only'> = {
  burst: 200,
  sequential: 50,
  decision: 50,
  held: 10_000,
  heldProbe: 20,
  directory: 10_000,
  timeoutSeconds: 1200,
  insertBatch: 500,
  reportPath: '.stack/bench-report.json',
  worker: 'process',
};

const COUNTS = ['burst', 'sequential', 'decision', 'held', 'heldProbe', 'directory', 'timeoutSeconds', 'insertBatch'] as const;
type CountName = (typeof COUNTS)[number];

const FLAGS: Record<string, CountName | 'only' | 'reportPath' | 'worker'> = {
  '--only': 'only',
  '--burst': 'burst',
  '--sequential': 'sequential',
  '--decision': 'decision',
  '--held': 'held',
  '--held-probe': 'heldProbe',
  '--directory': 'directory',
  '--timeout': 'timeoutSeconds',
  '--insert-batch': 'insertBatch',
  '--report': 'reportPath',
  '--worker': 'worker',
};

const ENV: Record<CountName | 'only' | 'reportPath' | 'worker', string> = {
  only: 'BENCH_ONLY',
  burst: 'BENCH_BURST',
  sequential: 'BENCH_SEQUENTIAL',
  decision: 'BENCH_DECISION',
  held: 'BENCH_HELD',
  heldProbe: 'BENCH_HELD_PROBE',
  directory: 'BENCH_DIRECTORY',
  timeoutSeconds: 'BENCH_TIMEOUT',
  insertBatch: 'BENCH_INSERT_BATCH',
  reportPath: 'BENCH_REPORT',
  worker: 'BENCH_WORKER',
};

function count(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive whole number, not "${text}"`);
  return value;
}

function scenarios(text: string): ScenarioName[] {
  const names = text.split(',').map((name) => name.trim()).filter(Boolean);
  const unknown = names.filter((name) => !(SCENARIOS as readonly string[]).includes(name));
  if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(', ')}; choose from ${SCENARIOS.join(', ')}`);
  return SCENARIOS.filter((name) => names.includes(name));
}

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const given: Partial<Record<CountName | 'only' | 'reportPath' | 'worker', string>> = {};
  for (const [key, variable] of Object.entries(ENV)) {
    const value = env[variable];
    if (value) given[key as keyof typeof ENV] = value;
  }
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index]!;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (/^\d+$/.test(arg)) {
      given.burst = arg;
      continue;
    }
    if (flag === '--help' || flag === '-h') throw new UsageRequested();
    const key = FLAGS[flag];
    if (!key) throw new Error(`unknown option ${arg}; options: ${Object.keys(FLAGS).join(' ')}`);
    const value = inline ?? argv[(index += 1)];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    given[key] = value;
  }
  const options: BenchOptions = { ...DEFAULTS, only: given.only ? scenarios(given.only) : [...SCENARIOS] };
  for (const name of COUNTS) if (given[name] !== undefined) options[name] = count(name, given[name]);
  if (given.reportPath) options.reportPath = given.reportPath;
  if (given.worker) {
    if (given.worker !== 'process' && given.worker !== 'in-process') throw new Error(`--worker must be process or in-process, not "${given.worker}"`);
    options.worker = given.worker;
  }
  return options;
}

export class UsageRequested extends Error {}

export const USAGE = `npm run bench -- [--only ${SCENARIOS.join(',')}] [--burst N] [--sequential N] [--decision N]
                 [--held K] [--held-probe N] [--directory N] [--timeout SECONDS] [--insert-batch ROWS]
                 [--report PATH] [--worker process|in-process]
Every option also reads BENCH_<NAME> (BENCH_HELD, BENCH_TIMEOUT, BENCH_ONLY, BENCH_REPORT, ...).`;
