import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { componentLogger, logLine } from './logger';

/**
 * The operations endpoint of a process (README "Operations"): GET /metrics (Prometheus text), /livez
 * (the process's event loop answers) and /readyz (its dependencies are connected, and it is not shutting
 * down). No payload, id or name is ever in an answer: labels are topics, codes, kinds and outcomes only.
 *
 * Each process has its own port (WORKER_OPS_PORT, INGRESS_OPS_PORT, RELAY_OPS_PORT; 0 turns it off) on
 * OPS_HOST; the codec server answers the same three paths on its own port.
 */

/** One dependency's state as /readyz reports it. */
export type ReadinessChecks = Record<string, boolean>;

export interface OpsEndpointsOptions {
  /** The process's metrics (see newProcessRegistry). */
  registry: Registry;
  /** What /readyz checks (each true when connected). Throwing or taking longer than 2 s counts as not ready. */
  readiness: () => ReadinessChecks | Promise<ReadinessChecks>;
  /** More Prometheus text appended to /metrics (the Temporal SDK's own metrics in the worker). */
  extraMetrics?: () => Promise<string>;
  log?: (line: string) => void;
}

const READINESS_TIMEOUT_MS = 2000;
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** A registry with Node's process metrics (CPU, memory, event loop lag, GC) and a `process` label. */
export function newProcessRegistry(process: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ process });
  collectDefaultMetrics({ register: registry });
  return registry;
}

export class OpsEndpoints {
  private stopping = false;

  constructor(private readonly options: OpsEndpointsOptions) {}

  /** From now on /readyz answers 503: load balancers and the group stop sending work here. */
  beginShutdown(): void {
    this.stopping = true;
  }

  get shuttingDown(): boolean {
    return this.stopping;
  }

  async readiness(): Promise<{ ready: boolean; checks: ReadinessChecks }> {
    let checks: ReadinessChecks;
    try {
      checks = await withTimeout(Promise.resolve(this.options.readiness()), READINESS_TIMEOUT_MS);
    } catch {
      checks = { dependencies: false };
    }
    if (this.stopping) checks = { ...checks, 'not-shutting-down': false };
    return { ready: Object.values(checks).every(Boolean), checks };
  }

  /** Answers GET/HEAD /metrics, /livez and /readyz; false (nothing written) for any other request. */
  async handle(request: IncomingMessage, response: ServerResponse): Promise<boolean> {
    if (request.method !== 'GET' && request.method !== 'HEAD') return false;
    const path = new URL(request.url ?? '/', 'http://ops.invalid').pathname;
    const plain = { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' };
    switch (path) {
      case '/livez':
        response.writeHead(200, plain).end('ok\n');
        return true;
      case '/readyz': {
        const { ready, checks } = await this.readiness();
        response.writeHead(ready ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(`${JSON.stringify({ ready, checks })}\n`);
        return true;
      }
      case '/metrics': {
        let text = await this.options.registry.metrics();
        if (this.options.extraMetrics) {
          const extra = await this.options.extraMetrics().catch((error: unknown) => {
            this.options.log?.(`ops: extra metrics unavailable: ${error instanceof Error ? error.message : String(error)}`);
            return '';
          });
          if (extra) text = `${text.trimEnd()}\n${extra.trimEnd()}\n`;
        }
        response.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'cache-control': 'no-store' }).end(text);
        return true;
      }
      default:
        return false;
    }
  }
}

/** An HTTP server that answers the ops paths only (404 otherwise). */
export function createOpsServer(endpoints: OpsEndpoints): Server {
  const server = createServer((request, response) => {
    endpoints
      .handle(request, response)
      .then((answered) => {
        if (!answered) response.writeHead(404, { 'content-type': 'text/plain' }).end('GET /metrics, /livez or /readyz\n');
      })
      .catch(() => {
        if (!response.headersSent) response.writeHead(500);
        response.end();
      });
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;
  return server;
}

/**
 * Starts the ops server on host:port; null when port is 0 (off). A port that cannot be bound (another
 * process of this machine has it) is logged and the process goes on without it: metrics are not worth
 * stopping the work for.
 */
export async function startOpsServer(endpoints: OpsEndpoints, options: { host: string; port: number; name: string; log?: (line: string) => void }): Promise<Server | null> {
  if (options.port === 0) return null;
  const server = createOpsServer(endpoints);
  const log = options.log ?? logLine(componentLogger(options.name));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    log(`ops endpoint not started on ${options.host}:${options.port}: ${error instanceof Error ? error.message : String(error)}`);
    return null;
  }
  log(`ops endpoint on http://${options.host}:${options.port} (/metrics /livez /readyz)`);
  return server;
}

export async function closeServer(server: Server | null): Promise<void> {
  if (!server) return;
  server.closeAllConnections?.();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/**
 * SIGTERM/SIGINT handling of a process entry: the first signal runs `stop` (after turning readiness
 * off), a second one, or `graceMs` passing, ends the process at once with exit code 1.
 */
export function onShutdownSignals(options: { name: string; graceMs: number; ops?: OpsEndpoints; stop: (signal: NodeJS.Signals) => Promise<void>; log?: (line: string) => void }): void {
  const log = options.log ?? logLine(componentLogger(options.name));
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      log(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    options.ops?.beginShutdown();
    log(`${signal}: finishing what it holds (at most ${Math.round(options.graceMs / 1000)} s)`);
    const deadline = setTimeout(() => {
      log(`not stopped within ${Math.round(options.graceMs / 1000)} s: exiting`);
      process.exit(1);
    }, options.graceMs);
    deadline.unref();
    options.stop(signal).then(
      () => {
        log('stopped cleanly');
        process.exit(process.exitCode ?? 0);
      },
      (error: unknown) => {
        log(`stopping failed: ${error instanceof Error ? error.message : String(error)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
