import { appRequestWorkflowId } from '../../rules/app-request';
import type { RequestPair } from '../demo-org';
import { pairKey } from '../outbound-watch';
import { now, ratio, summarize } from '../stats';
import { APP_REQUEST_DECIDED, appRequested, ms, partialNote, times, type Scenario, type ScenarioContext } from './scenario';

type Decided = { toAssigned: number; toResult: number | null; refused?: string } | { refused: string } | null;

/**
 * One request, pending, then approved once it waits: the decision's times (to the dashboard event, to
 * its result). The request's accepted result goes out while its first workflow task is still running
 * (the step's start, the approvers' email); the decision is sent once the workflow waits, as the
 * baseline's Update is sent to a workflow that waits.
 */
async function requestAndApprove({ backend, channel, watch, org }: ScenarioContext, pair: RequestPair, deadline: number): Promise<Decided> {
  const request = await channel.send(appRequested(org, pair));
  const pending = await watch.results.wait(request.commandId, deadline);
  if (!pending) return null;
  if (!pending.accepted || !pending.requestId) return { refused: `request: ${pending.code ?? 'no requestId'}` };
  while (!(await backend.workflowWaits(appRequestWorkflowId(pending.requestId)))) {
    if (now() > deadline) return null;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const decided = await channel.send({
    topic: 'decisions',
    type: APP_REQUEST_DECIDED,
    data: { orgId: org.orgId, requestId: pending.requestId, approverId: org.approverId, decision: 'APPROVE' },
  });
  const assigned = await watch.assignments.wait(pairKey(pair.userId, pair.appId), deadline);
  if (!assigned) return null;
  const result = await watch.results.wait(decided.commandId, deadline);
  return {
    toAssigned: assigned.at - decided.sentAt,
    toResult: result ? result.at - decided.sentAt : null,
    refused: result && !result.accepted ? `decision: ${result.code}` : undefined,
  };
}

/**
 * Requests for an app with one USER approval step, one after another: once the request is pending and
 * its workflow waits, the approver's APPROVE goes to the decisions topic; timed from that send to the
 * dashboard event. The ingress carries a decision to the request's
 * workflow as a Temporal Update. Baseline: bare Update round trips (executeUpdate on a waiting workflow).
 * One unmeasured round of each first.
 */
export const decision: Scenario = async (context) => {
  const { org, baseline, options } = context;
  const count = options.decision;
  const deadline = now() + options.timeoutSeconds * 1000;
  await baseline.updates(1);
  await requestAndApprove(context, org.oneApproval.take(1)[0]!, deadline);
  const bare = summarize(await baseline.updates(count));
  const toAssigned: number[] = [];
  const toResult: number[] = [];
  const refused: string[] = [];
  for (const pair of org.oneApproval.take(count)) {
    const decided = await requestAndApprove(context, pair, deadline);
    if (!decided) break;
    if (decided.refused) refused.push(decided.refused);
    if ('toAssigned' in decided) {
      toAssigned.push(decided.toAssigned);
      if (decided.toResult !== null) toResult.push(decided.toResult);
    }
  }
  const latency = summarize(toAssigned);
  const resultLatency = summarize(toResult);
  const ratios = { p50: ratio(latency.p50, bare.p50), p99: ratio(latency.p99, bare.p99) };
  return {
    name: 'decision',
    title: `Decision via Update: ${count} one-step approvals, decision sent -> dashboard event`,
    complete: toAssigned.length === count && refused.length === 0,
    system: { decisions: count, granted: toAssigned.length, latency, decisionResultLatency: resultLatency, refused },
    baseline: { updates: count, latency: bare },
    ratios,
    rows: [
      { metric: 'p50 latency', system: ms(latency.p50), baseline: ms(bare.p50), ratio: times(ratios.p50) },
      { metric: 'p99 latency', system: ms(latency.p99), baseline: ms(bare.p99), ratio: times(ratios.p99) },
      { metric: 'p50 decision sent -> its result', system: ms(resultLatency.p50), baseline: '', ratio: '' },
    ],
    notes: [
      'baseline: executeUpdate round trip on a started workflow that waits for the Update, one after another',
      'each decision is sent once its request waits (no workflow task or activity in flight), as the baseline\'s workflow waits',
      ...(refused.length ? [`refused: ${refused.slice(0, 5).join(', ')}${refused.length > 5 ? ', ...' : ''}`] : []),
      ...partialNote('dashboard events', toAssigned.length, count, options.timeoutSeconds),
    ],
  };
};
