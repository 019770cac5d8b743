import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { pingUpdate, readyQuery } from './baseline-workflow';
import { now } from './stats';

/**
 * Bare Temporal on the same server as the backend, with its own worker in this process and its own
 * task queue: workflows with one no-op activity, and an Update round trip. No payload codec.
 */
export interface TemporalBaseline {
  /** `count` workflows started at once, each timed from start to result. */
  burst(count: number): Promise<{ ms: number; latencies: number[] }>;
  /** `count` workflows one after another: client.workflow.execute round trips. */
  sequential(count: number): Promise<number[]>;
  /** `count` Updates one after another, each on a started workflow that waits for it. */
  updates(count: number): Promise<number[]>;
  stop(): Promise<void>;
}

export async function startTemporalBaseline(address: string, namespace: string): Promise<TemporalBaseline> {
  const taskQueue = `bench-baseline-${randomUUID().slice(0, 8)}`;
  const workerConnection = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    connection: workerConnection,
    namespace,
    taskQueue,
    workflowsPath: require.resolve('./baseline-workflow'),
    activities: { noop: async () => undefined },
  });
  const running = worker.run();
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace });
  const execute = async () => {
    const started = now();
    await client.workflow.execute('baselineWorkflow', { taskQueue, workflowId: `bench-baseline-${randomUUID()}` });
    return now() - started;
  };
  return {
    async burst(count) {
      const started = now();
      const latencies = await Promise.all(Array.from({ length: count }, execute));
      return { ms: now() - started, latencies };
    },
    async sequential(count) {
      const latencies: number[] = [];
      for (let index = 0; index < count; index += 1) latencies.push(await execute());
      return latencies;
    },
    async updates(count) {
      const latencies: number[] = [];
      for (let index = 0; index < count; index += 1) {
        const handle = await client.workflow.start('pingWorkflow', { taskQueue, workflowId: `bench-ping-${randomUUID()}` });
        await handle.query(readyQuery); // its first task has run: it waits, as a pending request does
        const started = now();
        await handle.executeUpdate(pingUpdate);
        latencies.push(now() - started);
        await handle.result();
      }
      return latencies;
    },
    async stop() {
      worker.shutdown();
      await running;
      await connection.close();
      await workerConnection.close();
    },
  };
}
