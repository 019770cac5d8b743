import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The processes of the backend, as `services/app.sh` runs them, and the line each prints when ready: a
 * text line (`worker: polling ...`) or a JSON log line (`{"component":"worker",...,"msg":"worker: polling ..."}`).
 */
export const BACKEND_PROCESSES = {
  worker: { entry: 'workers/temporal-worker.ts', ready: readyLine('worker', 'polling') },
  ingress: { entry: 'workers/kafka-ingress.ts', ready: readyLine('ingress', 'consuming') },
  relay: { entry: 'workers/outbox-relay-process.ts', ready: readyLine('relay', 'publishing') },
} as const;

function readyLine(component: string, message: string): RegExp {
  return new RegExp(`^${component}: ${message}|"component":"${component}"[^\\n]*"msg":"(${component}: )?${message}`, 'm');
}

/**
 * Settings every process started by the harness gets: the ops endpoints (metrics, health) off, so that
 * several processes of one kind, and the shared stack's own, never compete for their fixed ports.
 */
export const HARNESS_PROCESS_ENV: NodeJS.ProcessEnv = { WORKER_OPS_PORT: '0', INGRESS_OPS_PORT: '0', RELAY_OPS_PORT: '0' };

export type BackendProcessName = keyof typeof BACKEND_PROCESSES;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One backend process (worker or ingress) started as a real child process in its own process group,
 * so SIGKILL to the group kills tsx and the node process it runs. Each incarnation logs to its own file.
 */
export class BackendProcess {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private incarnation = 0;
  logFile = '';

  constructor(
    readonly name: BackendProcessName,
    private readonly root: string,
    private readonly logDir: string,
    private readonly env: NodeJS.ProcessEnv,
    /** Names the log files when several processes of one kind run (`worker-2` logs to `worker-2-<n>.log`). */
    readonly label: string = name,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Spawns a new incarnation; returns when it was spawned and when it printed its ready line. */
  async start(timeoutMs = 180_000): Promise<{ spawnedAt: number; readyAt: number }> {
    this.incarnation += 1;
    mkdirSync(this.logDir, { recursive: true });
    this.logFile = path.join(this.logDir, `${this.label}-${this.incarnation}.log`);
    const fd = openSync(this.logFile, 'a');
    const tsx = path.join(this.root, 'node_modules', 'tsx', 'dist', 'cli.mjs');
    const spec = BACKEND_PROCESSES[this.name];
    const spawnedAt = Date.now();
    const child = spawn(process.execPath, [tsx, path.join(this.root, spec.entry)], {
      cwd: this.root,
      env: { ...HARNESS_PROCESS_ENV, ...this.env },
      detached: true, // its own process group
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    this.child = child;
    let exitCode: number | null | undefined;
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        exitCode = code ?? (signal ? -1 : null);
        resolve();
      }),
    );
    while (Date.now() - spawnedAt < timeoutMs) {
      if (spec.ready.test(readFileSync(this.logFile, 'utf8'))) return { spawnedAt, readyAt: Date.now() };
      if (exitCode !== undefined) break;
      await sleep(100);
    }
    const tail = readFileSync(this.logFile, 'utf8').split('\n').slice(-20).join('\n');
    throw new Error(`${this.name} did not become ready (exit ${String(exitCode)}); log ${this.logFile}:\n${tail}`);
  }

  /** SIGKILL to the whole process group, as a crash or an OOM kill would end it. */
  async kill(): Promise<void> {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await this.exited;
    this.child = null;
  }

  /** SIGTERM to the group, SIGKILL after a grace period. */
  async stop(graceMs = 10_000): Promise<void> {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      return;
    }
    const stopped = await Promise.race([this.exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!stopped) await this.kill();
    this.child = null;
  }
}
