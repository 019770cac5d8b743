import type { BenchBackend } from '../backend';
import { now, perSecond, ratio, sleep, summarize } from '../stats';
import { mib, ms, partialNote, rate, times, appRequested, type Scenario } from './scenario';
import { autoGrantOneByOne } from './sequential';

/** Waits until the worker has had nothing in flight for `quietMs`, or the deadline; returns whether it went quiet. */
async function untilQuiet(backend: BenchBackend, deadline: number, quietMs = 2000): Promise<boolean> {
  let quietSince: number | null = null;
  while (now() < deadline) {
    const busy = await backend.workerBusy();
    quietSince = busy ? null : (quietSince ?? now());
    if (quietSince !== null && now() - quietSince >= quietMs) return true;
    await sleep(100);
  }
  return false;
}

/**
 * K requests that wait for an approver, sent through Kafka in batches: how fast they are taken in
 * (until every one has its accepted result), the worker's memory once they are all pending, and then
 * the auto-grant latency (requests one after another) with them pending, against the same measure on
 * the idle system (the sequential scenario). The K requests stay pending; the org is this run's own.
 */
export const heldLoad: Scenario = async (context) => {
  const { backend, channel, watch, org, options } = context;
  const count = options.held;
  const timeoutMs = options.timeoutSeconds * 1000;
  const memoryBefore = backend.workerMemory();
  const pairs = org.oneApproval.take(count);
  const started = now();
  const sent = await channel.sendMany(pairs.map((pair) => appRequested(org, pair)));
  const sentSeconds = (now() - started) / 1000;
  const arrived = await watch.results.waitAll(sent.map((command) => command.commandId), started + timeoutMs);
  const results = sent.flatMap((command) => {
    const result = watch.results.get(command.commandId);
    return result ? [result] : [];
  });
  const accepted = results.filter((result) => result.accepted).length;
  const rejections: Record<string, number> = {};
  for (const result of results) if (!result.accepted) rejections[result.code ?? 'UNKNOWN'] = (rejections[result.code ?? 'UNKNOWN'] ?? 0) + 1;
  const intakeMs = (arrived === count ? Math.max(...results.map((result) => result.at)) : now()) - started;

  const settleStarted = now();
  const quiet = await untilQuiet(backend, settleStarted + timeoutMs);
  const settleSeconds = (now() - settleStarted) / 1000;
  const memory = backend.workerMemory();

  const probeLatencies = await autoGrantOneByOne(channel, watch, org, options.heldProbe, now() + timeoutMs);
  const probe = summarize(probeLatencies);
  const idle = context.idleAutoGrant;
  const ratios = { p50: ratio(probe.p50, idle?.p50), p99: ratio(probe.p99, idle?.p99) };
  const system = {
    requests: count,
    results: arrived,
    accepted,
    rejections,
    sendSeconds: sentSeconds,
    intakeSeconds: intakeMs / 1000,
    intakeRate: perSecond(arrived, intakeMs),
    settledSeconds: settleSeconds,
    settled: quiet,
    worker: {
      placement: backend.workerPlacement,
      rssBytes: memory.rss,
      rssBeforeBytes: memoryBefore.rss,
      heapUsedBytes: memory.heapUsed,
    },
    autoGrantWhileHeld: probe,
  };
  return {
    name: 'held',
    title: `Held load: ${count} requests pending approval, then ${options.heldProbe} auto-grants one at a time`,
    complete: arrived === count && quiet && probeLatencies.length === options.heldProbe,
    system,
    baseline: idle ? { autoGrantIdle: idle } : null,
    ratios,
    rows: [
      { metric: 'taken in (accepted results)', system: rate(system.intakeRate), baseline: '', ratio: '' },
      { metric: `worker RSS (${backend.workerPlacement === 'process' ? 'its own process' : 'in-process, whole process'})`, system: mib(memory.rss), baseline: mib(memoryBefore.rss), ratio: times(ratio(memory.rss, memoryBefore.rss)) },
      { metric: 'auto-grant p50, held vs idle', system: ms(probe.p50), baseline: ms(idle?.p50), ratio: times(ratios.p50) },
      { metric: 'auto-grant p99, held vs idle', system: ms(probe.p99), baseline: ms(idle?.p99), ratio: times(ratios.p99) },
    ],
    notes: [
      `sent in ${sentSeconds.toFixed(1)} s (batches of 500 records); ${accepted} accepted${Object.keys(rejections).length ? `, rejected: ${JSON.stringify(rejections)}` : ''}`,
      `then ${quiet ? '' : 'NOT '}quiet (the worker idle for 2 s) after ${settleSeconds.toFixed(1)} s`,
      backend.workerPlacement === 'process'
        ? `RSS: VmRSS of the worker's own process (${backend.workerStart}, WORKER_MAX_CACHED_WORKFLOWS=${backend.config.WORKER_MAX_CACHED_WORKFLOWS}); baseline column: the same before the ${count} requests were sent`
        : `RSS: process.memoryUsage().rss of this one process, which runs the worker, the ingress, the outbox relay, the bare-Temporal baseline worker and the bench; baseline column: the same before the ${count} requests were sent`,
      ...(idle ? [] : ['no idle auto-grant figure: run the sequential scenario too for the held/idle ratio']),
      ...partialNote('accepted results', arrived, count, options.timeoutSeconds),
    ],
  };
};
