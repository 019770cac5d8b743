import { loadConfig } from './config';
import { codecFromConfig } from './payload-codec';
import { createWorker } from './runtime';

/** The Temporal worker process: runs every workflow and activity on the configured task queue. */
async function main(): Promise<void> {
  const config = loadConfig();
  const { worker, close } = await createWorker(config);
  const { keyId } = codecFromConfig(config);
  console.log(`worker: polling task queue ${config.TEMPORAL_TASK_QUEUE} on ${config.TEMPORAL_ADDRESS} (pid ${process.pid}, payload key id ${keyId})`);
  // Worker.run() returns after SIGINT/SIGTERM once in-flight tasks have finished.
  await worker.run();
  await close();
}

main().catch((error: unknown) => {
  console.error('worker: failed:', error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
