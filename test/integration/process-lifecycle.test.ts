import { execFile, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../../workers/config';
import { codecFromConfig, keyIdOf } from '../../workers/payload-codec';
import { testConfig, testDatabaseUrl } from '../support/test-config';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..', '..');
const appSh = path.join(root, 'services', 'app.sh');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The processes as `services/app.sh` runs them (`npm start`, `npm stop`): compiled JavaScript, one OS
 * process each, whose pid is the one in the pid file, so a signal to that pid (from `npm stop`, systemd,
 * Kubernetes) reaches the process that polls the task queue. Before, the pid was tsx's: a SIGKILL to it
 * left the real worker running, orphaned, still polling with its key. Each test run has its own run
 * directory (APP_RUN_DIR), task queue and topic namespace, beside whatever stack runs on this machine;
 * nothing here stops a service.
 */

/** A process's state letter from /proc (Z: exited, not yet reaped), or undefined when it is gone. */
function stateOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}
const isRunning = (pid: number) => ![undefined, 'Z', 'X'].includes(stateOf(pid));

function processGroupOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

function argvOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
}

/** Every child process of `pid`, from each of its threads. */
function childrenOf(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((task) =>
    readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
  );
}

/** Running processes that carry this run directory's mark (app.sh sets it; children inherit it). */
function markedProcesses(runDir: string): number[] {
  const mark = `SELFSERVICE_RUN_DIR=${runDir}`;
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(mark) && isRunning(pid);
      } catch {
        return false;
      }
    });
}

async function waitUntil(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(100);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

describe('the processes as app.sh runs them', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'selfservice-processes-'));
  const runDir = path.join(dir, 'run');
  const logDir = path.join(dir, 'logs');
  const key = randomBytes(32).toString('base64');
  const config = testConfig();
  let env: NodeJS.ProcessEnv;

  async function app(...args: string[]): Promise<string> {
    try {
      const { stdout, stderr } = await run('bash', [appSh, ...args], { cwd: root, env, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 });
      return stdout + stderr;
    } catch (error) {
      const failure = error as { stdout?: string; stderr?: string; message: string };
      throw new Error(`app.sh ${args.join(' ')} failed: ${failure.message}\n${failure.stdout ?? ''}${failure.stderr ?? ''}`);
    }
  }
  const pidOf = (name: string) => Number(readFileSync(path.join(runDir, `${name}.pid`), 'utf8').trim());

  beforeAll(async () => {
    env = { ...process.env };
    for (const name of ['PAYLOAD_ENCRYPTION_KEY_ID', 'PAYLOAD_DECRYPTION_KEYS', 'SELFSERVICE_RUN_DIR', 'SELFSERVICE_PROCESS']) delete env[name];
    Object.assign(env, {
      APP_RUN_DIR: runDir,
      APP_LOG_DIR: logDir,
      PAYLOAD_ENCRYPTION_KEY: key, // no PAYLOAD_ENCRYPTION_KEY_ID: the id is derived from the key
      DATABASE_URL: testDatabaseUrl(),
      KAFKA_TOPIC_NAMESPACE: config.KAFKA_TOPIC_NAMESPACE,
      TEMPORAL_TASK_QUEUE: config.TEMPORAL_TASK_QUEUE,
      CODEC_STATIC_TOKEN: randomBytes(32).toString('base64url'),
      CODEC_SERVER_PORT: String(await freePort()),
      STOP_TIMEOUT: '20',
    });
    await app('build'); // a no-op when dist/ is newer than every source
  }, 300_000);

  afterAll(async () => {
    // Whatever a failed test left: stopped by the sweep this suite checks.
    await app('processes-down').catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  test('the worker is one node process running dist/; SIGKILL to its recorded pid leaves nothing running; a task of a foreign key fails naming both ids', async () => {
    const started = await app('start', 'worker');
    const pid = pidOf('worker');
    expect(started).toContain(`worker: ready (pid ${pid}`);
    // The pid file holds node itself, running the compiled entry point: no loader, no wrapper shell;
    // the worker's memory is bounded by its node flags and malloc arenas.
    expect(argvOf(pid)).toEqual(['node', '--max-old-space-size=384', path.join(root, 'dist', 'workers', 'temporal-worker.js')]);
    expect(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')).toContain('MALLOC_ARENA_MAX=2');
    expect(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()).toBe('node');
    expect(childrenOf(pid)).toEqual([]);
    expect(processGroupOf(pid)).toBe(pid); // its own process group: a group signal reaches it and only it
    expect(markedProcesses(runDir)).toEqual([pid]);
    // The process that printed the ready line is the recorded one, and says which key id it writes.
    const log = readFileSync(path.join(logDir, 'worker.log'), 'utf8');
    const ownId = keyIdOf(Buffer.from(key, 'base64'));
    expect(log).toContain(`worker: polling task queue ${config.TEMPORAL_TASK_QUEUE} on ${config.TEMPORAL_ADDRESS} (pid ${pid}, payload key id ${ownId})`);

    // A client with another key (another clone's, or a key made anew): its ids differ, and the worker
    // refuses the task with an error that names the foreign id and its own, instead of "unable to authenticate data".
    const foreignKey = randomBytes(32);
    const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
    try {
      const foreign = new Client({
        connection,
        namespace: config.TEMPORAL_NAMESPACE,
        dataConverter: { payloadCodecs: [codecFromConfig(loadConfig({ PAYLOAD_ENCRYPTION_KEY: foreignKey.toString('base64') }))] },
      });
      const workflowId = `process-lifecycle-${randomUUID()}`;
      const handle = await foreign.workflow.start('personalAppAddWorkflow', { taskQueue: config.TEMPORAL_TASK_QUEUE, workflowId, args: [{ commandId: workflowId }] });
      try {
        let failure = '';
        for (let attempt = 0; attempt < 150 && !failure; attempt += 1) {
          const events = (await handle.fetchHistory()).events ?? [];
          failure = events.find((event) => event.workflowTaskFailedEventAttributes)?.workflowTaskFailedEventAttributes?.failure?.message ?? '';
          if (!failure) await sleep(200);
        }
        expect(failure).toContain(`encrypted with unknown key id "${keyIdOf(foreignKey)}"; this process holds "${ownId}" (current)`);
        expect(failure).not.toMatch(/unable to authenticate/);
      } finally {
        await handle.terminate('process-lifecycle test: clean up');
      }
    } finally {
      await connection.close();
    }

    // A crash or an OOM kill of the recorded pid ends the worker itself: no orphan keeps polling.
    process.kill(pid, 'SIGKILL');
    await waitUntil('the worker is gone', () => !isRunning(pid));
    expect(markedProcesses(runDir)).toEqual([]);
    // app.sh no longer counts it as running, and a later start is a new process.
    expect(await app('stop', 'worker')).toContain('worker: not running');
  });

  test('SIGTERM to the recorded pid stops the process: it exits by itself, nothing of it is left', async () => {
    await app('start', 'codec-server');
    const pid = pidOf('codec-server');
    expect(argvOf(pid)).toEqual(['node', path.join(root, 'dist', 'workers', 'codec-server.js')]);
    expect(childrenOf(pid)).toEqual([]);
    process.kill(pid, 'SIGTERM');
    await waitUntil('the codec server exits after SIGTERM', () => !isRunning(pid), 10_000);
    expect(markedProcesses(runDir)).toEqual([]);
  });

  test('processes-down (what npm stop runs before the services) stops the recorded processes and then any orphan of this clone', async () => {
    await app('start', 'codec-server');
    const recorded = pidOf('codec-server');
    // The orphan: a process run through a loader (tsx, as app.sh did before the build step)
    // whose loader was killed alone. Its real node process keeps running, and no pid file names it.
    const port = await freePort();
    const logFile = path.join(logDir, 'orphan.log');
    const fd = openSync(logFile, 'a');
    const loader = spawn(process.execPath, [path.join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs'), path.join(root, 'workers', 'codec-server.ts')], {
      cwd: root,
      env: { ...env, SELFSERVICE_RUN_DIR: runDir, CODEC_SERVER_PORT: String(port) },
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    const loaderPid = loader.pid!;
    await waitUntil('the orphan-to-be is listening', () => existsSync(logFile) && readFileSync(logFile, 'utf8').includes('codec-server: listening'), 60_000);
    const [real] = childrenOf(loaderPid);
    expect(real).toBeDefined();
    loader.kill('SIGKILL');
    await waitUntil('the loader is gone', () => !isRunning(loaderPid));
    expect(isRunning(real!)).toBe(true); // what a SIGKILL to the loader's pid left behind
    // Both carry the mark; so may a helper the orphan's loader started (esbuild's service), which the sweep must end too.
    expect(markedProcesses(runDir)).toEqual(expect.arrayContaining([recorded, real!]));

    const output = await app('processes-down');
    expect(output).toContain('codec-server: stopped');
    expect(output).toContain(`left over: pid ${real}`);
    expect(output).toContain('no process of this clone is left');
    expect(isRunning(recorded)).toBe(false);
    expect(isRunning(real!)).toBe(false);
    expect(markedProcesses(runDir)).toEqual([]);
    expect(readdirSync(runDir).filter((file) => file.endsWith('.pid'))).toEqual([]);
  });
});
