import { pairKey } from '../outbound-watch';
import { now, perSecond, ratio, summarize } from '../stats';
import { autoGrantOneByOne } from './sequential';
import { appRequested, ms, partialNote, rate, times, type Scenario } from './scenario';

/**
 * N auto-granted requests sent through Kafka at once; each timed from its send to its
 * `selfservice.dashboard.app-assigned.v1`. Baseline: N bare workflows with one no-op activity, started
 * at once, each timed from start to result. One unmeasured round trip of each first.
 */
export const burst: Scenario = async ({ channel, watch, org, baseline, options }) => {
  const count = options.burst;
  const deadline = now() + options.timeoutSeconds * 1000;
  await baseline.sequential(1);
  await autoGrantOneByOne(channel, watch, org, 1, deadline);
  const bare = await baseline.burst(count);
  const pairs = org.autoGrant.take(count);
  const started = now();
  const sent = await Promise.all(pairs.map((pair) => channel.send(appRequested(org, pair))));
  const arrivals = await Promise.all(pairs.map((pair) => watch.assignments.wait(pairKey(pair.userId, pair.appId), deadline)));
  const latencies = arrivals.flatMap((arrival, index) => (arrival ? [arrival.at - sent[index]!.sentAt] : []));
  const lastAt = Math.max(...arrivals.map((arrival) => arrival?.at ?? now()));
  const system = { requests: count, granted: latencies.length, seconds: (lastAt - started) / 1000, throughput: perSecond(latencies.length, lastAt - started), latency: summarize(latencies) };
  const base = { workflows: count, seconds: bare.ms / 1000, throughput: perSecond(count, bare.ms), latency: summarize(bare.latencies) };
  const ratios = {
    throughput: ratio(system.throughput, base.throughput),
    p50: ratio(system.latency.p50, base.latency.p50),
    p95: ratio(system.latency.p95, base.latency.p95),
  };
  return {
    name: 'burst',
    title: `Burst: ${count} auto-granted requests at once, Kafka in -> dashboard event out`,
    complete: latencies.length === count,
    system,
    baseline: base,
    ratios,
    rows: [
      { metric: 'throughput', system: rate(system.throughput), baseline: rate(base.throughput), ratio: times(ratios.throughput) },
      { metric: 'p50 latency', system: ms(system.latency.p50), baseline: ms(base.latency.p50), ratio: times(ratios.p50) },
      { metric: 'p95 latency', system: ms(system.latency.p95), baseline: ms(base.latency.p95), ratio: times(ratios.p95) },
    ],
    notes: [
      'baseline: bare workflows with one no-op activity, all started at once (client.workflow.execute), no payload codec',
      ...partialNote('dashboard events', latencies.length, count, options.timeoutSeconds),
    ],
  };
};
