import { createServer } from 'node:net';
import { Runtime } from '@temporalio/worker';
import { loadConfig } from './config';
import { componentLogger, configureLogging, logLine, temporalLogger } from './logger';
import { startTracing } from './tracing';
import { createWorkerMetrics } from './metrics';
import { closeServer, newProcessRegistry, onShutdownSignals, OpsEndpoints, startOpsServer } from './ops-server';
import { codecFromConfig } from './payload-codec';
import { createWorker } from './runtime';

/** The Temporal worker process: runs every workflow and activity on the configured task queue. */
async function main(): Promise<void> {
  const config = loadConfig();
  configureLogging(config);
  const tracing = startTracing(config, { serviceName: 'selfservice-worker' });
  const graceSeconds = config.SHUTDOWN_GRACE_SECONDS;
  // The process's one Temporal runtime, installed before any connection (here only: the tests run workers
  // in-process with the default runtime). The SDK's own metrics go to a loopback port of their own, which
  // /metrics appends to ours; signals are handled below, not by the SDK.
  const sdkMetricsPort = config.WORKER_OPS_PORT === 0 ? null : await freeLoopbackPort();
  Runtime.install({
    // Temporal's logs (activities' and workflows' `log`, the SDK, its core) go to the process's JSON logger.
    logger: temporalLogger(),
    shutdownSignals: [],
    ...(sdkMetricsPort === null ? {} : { telemetryOptions: { metrics: { prometheus: { bindAddress: `127.0.0.1:${sdkMetricsPort}` } } } }),
  });
  const { worker, close } = await createWorker(config, {
    // In-flight activities and tasks get the grace period, less a margin for closing connections.
    shutdown: { shutdownGraceTime: Math.max(1, graceSeconds - 5) * 1000, shutdownForceTime: Math.max(2, graceSeconds - 2) * 1000 },
  });
  const registry = newProcessRegistry('worker');
  createWorkerMetrics(registry, () => worker.getState());
  const ops = new OpsEndpoints({
    registry,
    readiness: () => ({ 'temporal-worker': worker.getState() === 'RUNNING' }),
    extraMetrics: sdkMetricsPort === null ? undefined : () => sdkMetrics(sdkMetricsPort),
    log: logLine(log, 'warn'),
  });
  const server = await startOpsServer(ops, { host: config.OPS_HOST, port: config.WORKER_OPS_PORT, name: 'worker' });
  const running = worker.run();
  let closing: Promise<void> | undefined;
  const finish = () => (closing ??= (async () => {
    await close();
    await closeServer(server);
    await tracing?.shutdown();
  })());
  // SIGTERM/SIGINT: stop polling, let in-flight activities and workflow tasks finish, close, exit 0.
  onShutdownSignals({
    name: 'worker',
    graceMs: graceSeconds * 1000,
    ops,
    stop: async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await finish();
    },
  });
  const { keyId } = codecFromConfig(config);
  // services/app.sh waits for "worker: polling" in the log.
  log.info(
    { taskQueue: config.TEMPORAL_TASK_QUEUE, payloadKeyId: keyId, tracing: tracing !== null },
    `worker: polling task queue ${config.TEMPORAL_TASK_QUEUE} on ${config.TEMPORAL_ADDRESS} (pid ${process.pid}, payload key id ${keyId})`,
  );
  try {
    await running;
  } finally {
    await finish();
  }
}

/** A free TCP port on 127.0.0.1 (for the SDK's metrics exporter, which is read only through /metrics). */
function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function sdkMetrics(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2000) });
  if (!response.ok) throw new Error(`the SDK's metrics answered ${response.status}`);
  return response.text();
}

const log = componentLogger('worker');

main().catch((error: unknown) => {
  log.fatal(`worker: failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
