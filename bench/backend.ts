import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Client } from '@temporalio/client';
import type { Kafka } from 'kafkajs';
import type { Topics } from '../events/topics';
import { loadConfig, type Config } from '../workers/config';
import { createKafka, ensureTopics } from '../events/kafka';
import { kafkaSettingsFrom, topicPolicyFrom } from '../workers/kafka-settings';
import { dataConverterFor } from '../workers/payload-codec';
import { createWorker } from '../workers/runtime';
import { connectClient } from '../workers/temporal-connection';
import { prepareBenchDatabase } from './bench-database';

/**
 * The backend under test, its processes started as `npm start` starts them (compiled, with its node
 * flags), on a fresh topic namespace, task queue and consumer group, against the test database (or
 * BENCH_DATABASE, see bench-database.ts).
 * Everything that knows how the backend is put together is in this one function, so a change of its
 * processes changes only this file. The processes today: the Temporal worker, the Kafka ingress and the
 * outbox relay (which publishes what the other two write to the outbox).
 */
export interface BenchBackend {
  run: string;
  config: Config;
  /** The database's name (its URLs hold a password: never print them). */
  databaseName: string;
  /** The owner role of the backend's database, for the bench's own scratch tables. */
  ownerDatabaseUrl: string;
  kafka: Kafka;
  topics: Topics;
  /** Where the worker runs, and so what `workerMemory` measures. */
  workerPlacement: WorkerPlacement;
  /** How the worker was started (its node flags and malloc arenas), for the report. */
  workerStart: string;
  /**
   * The worker's resident memory: its own process's (`process`), or this process's, which runs the
   * worker with the bench (`in-process`).
   */
  workerMemory(): { rss: number; heapUsed: number | null };
  /** Whether the worker is working now (tasks in flight, or CPU time spent in the last moment): to tell when the backend has gone quiet. */
  workerBusy(): Promise<boolean>;
  /** The parts that were started, for the report. */
  parts: string[];
  /**
   * Whether the workflow waits, as a bare workflow waits for its Update: no workflow task and no
   * activity in flight (a Temporal client of the backend, with its payload codec).
   */
  workflowWaits(workflowId: string): Promise<boolean>;
  stop(): Promise<void>;
}

/**
 * `process`: the worker as production runs it, `node dist/workers/temporal-worker.js` (built first), its
 * own OS process; `in-process`: in this process, beside the bench.
 */
export type WorkerPlacement = 'process' | 'in-process';

const root = path.resolve(__dirname, '..');

interface BenchWorker {
  /** How it was started: node flags and malloc arenas (own process), or `in-process`. */
  how: string;
  memory(): { rss: number; heapUsed: number | null };
  busy(): Promise<boolean>;
  stop(): Promise<void>;
}

function startWorkerInProcess(config: Config): Promise<BenchWorker> {
  return createWorker(config).then(({ worker, close }) => {
    const running = worker.run();
    return {
      how: 'in-process',
      memory: () => {
        const { rss, heapUsed } = process.memoryUsage();
        return { rss, heapUsed };
      },
      busy: async () => {
        const status = worker.getStatus();
        return status.numInFlightActivities + status.numInFlightWorkflowActivations > 0;
      },
      async stop() {
        worker.shutdown();
        await running.catch((error: unknown) => console.error('bench: worker stopped with', error instanceof Error ? error.message : error));
        await close();
      },
    };
  });
}

/** utime + stime of a process, in clock ticks (1/100 s). */
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

interface BenchProcess {
  pid: number;
  /** node flags and malloc arenas, as `npm start` gives them. */
  how: string;
  stop(): Promise<void>;
}

/**
 * One of the backend's processes, `node <flags> dist/workers/<entry>.js`, with the node flags and malloc
 * arenas that `npm start` gives it (services/app.sh node-args, malloc-arenas), or those of
 * BENCH_WORKER_NODE_OPTIONS, BENCH_INGRESS_NODE_OPTIONS, BENCH_RELAY_NODE_OPTIONS (e.g. `--cpu-prof`);
 * ready once its stdout shows `ready`. Its stderr (warnings, errors) is shown with its name.
 */
async function startProcess(name: 'worker' | 'ingress' | 'relay', entry: string, ready: string, environment: NodeJS.ProcessEnv): Promise<BenchProcess> {
  const ask = (what: string) => execFileSync('bash', [path.join(root, 'services', 'app.sh'), what, name], { encoding: 'utf8', env: environment }).trim();
  const flags = (environment[`BENCH_${name.toUpperCase()}_NODE_OPTIONS`] ?? ask('node-args')).split(' ').filter(Boolean);
  const arenas = ask('malloc-arenas');
  const child: ChildProcess = spawn(process.execPath, [...flags, path.join(root, 'dist', 'workers', entry)], {
    cwd: root,
    env: { ...environment, ...(arenas ? { MALLOC_ARENA_MAX: arenas } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid!;
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the ${name} process was not ready within 120 s`)), 120_000);
    child.once('exit', (code) => reject(new Error(`the ${name} process exited (${code}) before it was ready`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes(ready)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  child.stderr!.on('data', (chunk: Buffer) => process.stderr.write(`  ${name}: ${chunk.toString()}`));
  return {
    pid,
    how: `node ${[...flags, `dist/workers/${entry}`].join(' ')}${arenas ? `, MALLOC_ARENA_MAX=${arenas}` : ''}`,
    async stop() {
      child.kill('SIGTERM');
      const stopped = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('timeout'), 30_000))]);
      if (stopped === 'timeout') child.kill('SIGKILL');
    },
  };
}

async function startWorkerProcess(environment: NodeJS.ProcessEnv): Promise<BenchWorker> {
  const worker = await startProcess('worker', 'temporal-worker.js', 'polling task queue', environment);
  return {
    how: worker.how,
    memory: () => {
      const rssKiB = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${worker.pid}/status`, 'utf8'))?.[1];
      return { rss: Number(rssKiB) * 1024, heapUsed: null };
    },
    // More than 2 ticks (20 ms of CPU) in 250 ms: at work.
    busy: async () => {
      const before = cpuTicks(worker.pid);
      await new Promise((resolve) => setTimeout(resolve, 250));
      return cpuTicks(worker.pid) - before > 2;
    },
    stop: () => worker.stop(),
  };
}

export async function startBenchBackend(placement: WorkerPlacement = 'process'): Promise<BenchBackend> {
  const run = randomUUID().slice(0, 8);
  const database = await prepareBenchDatabase();
  const environment = {
    ...process.env,
    DATABASE_URL: database.url,
    KAFKA_TOPIC_NAMESPACE: `bench-${run}.`,
    TEMPORAL_TASK_QUEUE: `bench-${run}`,
    KAFKA_CONSUMER_GROUP: `bench-${run}`,
    // The bench's worker serves no metrics: an `npm start` worker may hold the default port.
    WORKER_OPS_PORT: '0',
    // Marks the worker process as the bench's own, so that `npm stop` (its sweep of this clone's leftover
    // processes) leaves it alone.
    SELFSERVICE_RUN_DIR: path.join(root, '.stack', 'bench-run'),
  };
  const config = loadConfig(environment);
  // The bench's own Kafka client (its commands in, the backend's events out), on the run's topics.
  const kafka = createKafka({ ...kafkaSettingsFrom(config), clientId: `bench-${run}` });
  const topics = await ensureTopics(kafka, config.KAFKA_TOPIC_NAMESPACE, topicPolicyFrom(config));
  execFileSync('bash', [path.join(root, 'services', 'app.sh'), 'build'], { stdio: 'inherit' });
  const worker = placement === 'process' ? await startWorkerProcess(environment) : await startWorkerInProcess(config);
  // The relay (with its audit sealer) and the ingress in their own processes, as `npm start` runs them.
  const temporal = new Client({ connection: await connectClient(config), namespace: config.TEMPORAL_NAMESPACE, dataConverter: dataConverterFor(config) });
  const relay = await startProcess('relay', 'outbox-relay-process.js', 'relay: publishing the outbox', { ...environment, RELAY_OPS_PORT: '0' });
  const ingress = await startProcess('ingress', 'kafka-ingress.js', 'ingress: consuming', { ...environment, INGRESS_OPS_PORT: '0' });
  return {
    run,
    config,
    databaseName: new URL(database.url).pathname.slice(1),
    ownerDatabaseUrl: database.ownerUrl,
    kafka,
    topics,
    workerPlacement: placement,
    workerStart: worker.how,
    parts: [`temporal worker (${placement === 'process' ? 'own process' : 'in-process'})`, 'kafka ingress (own process)', 'outbox relay with audit sealer (own process)'],
    workerMemory: () => worker.memory(),
    workerBusy: () => worker.busy(),
    async workflowWaits(workflowId) {
      const { raw } = await temporal.workflow.getHandle(workflowId).describe();
      return !raw.pendingWorkflowTask && (raw.pendingActivities?.length ?? 0) === 0;
    },
    async stop() {
      await ingress.stop();
      await worker.stop();
      await relay.stop();
      await temporal.connection.close();
    },
  };
}
