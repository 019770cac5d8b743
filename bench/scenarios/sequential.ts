import type { CommandChannel } from '../command-channel';
import type { DemoOrg } from '../demo-org';
import { pairKey, type OutboundWatch } from '../outbound-watch';
import { now, ratio, summarize } from '../stats';
import { appRequested, ms, partialNote, times, type Scenario } from './scenario';

/**
 * Auto-granted requests one after another, each timed from its send to its dashboard event. Stops at
 * the deadline; returns the latencies of those that arrived.
 */
export async function autoGrantOneByOne(channel: CommandChannel, watch: OutboundWatch, org: DemoOrg, count: number, deadline: number): Promise<number[]> {
  const latencies: number[] = [];
  for (const pair of org.autoGrant.take(count)) {
    const sent = await channel.send(appRequested(org, pair));
    const assigned = await watch.assignments.wait(pairKey(pair.userId, pair.appId), deadline);
    if (!assigned) break;
    latencies.push(assigned.at - sent.sentAt);
  }
  return latencies;
}

/**
 * N auto-granted requests one after another on an idle system. Baseline: N bare workflows run one
 * after another (client.workflow.execute round trips). One unmeasured round of each first.
 */
export const sequential: Scenario = async (context) => {
  const { channel, watch, org, baseline, options } = context;
  const count = options.sequential;
  const deadline = now() + options.timeoutSeconds * 1000;
  await baseline.sequential(1);
  await autoGrantOneByOne(channel, watch, org, 1, deadline);
  const bare = summarize(await baseline.sequential(count));
  const latencies = await autoGrantOneByOne(channel, watch, org, count, deadline);
  const latency = summarize(latencies);
  context.idleAutoGrant = latency;
  const ratios = { p50: ratio(latency.p50, bare.p50), p99: ratio(latency.p99, bare.p99) };
  return {
    name: 'sequential',
    title: `Sequential: ${count} auto-granted requests one at a time on an idle system`,
    complete: latencies.length === count,
    system: { requests: count, granted: latencies.length, latency },
    baseline: { workflows: count, latency: bare },
    ratios,
    rows: [
      { metric: 'p50 latency', system: ms(latency.p50), baseline: ms(bare.p50), ratio: times(ratios.p50) },
      { metric: 'p99 latency', system: ms(latency.p99), baseline: ms(bare.p99), ratio: times(ratios.p99) },
    ],
    notes: [
      'baseline: client.workflow.execute of the no-op-activity workflow, one after another',
      ...partialNote('dashboard events', latencies.length, count, options.timeoutSeconds),
    ],
  };
};
