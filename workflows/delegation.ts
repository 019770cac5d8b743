import { getExternalWorkflowHandle, log, proxyActivities, sleep } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { RECORDING } from './activity-options';
import { reviewSignal } from './app-request-messages';

/**
 * Delegation while away: what wakes at a delegation's start and end. The ingress starts one per
 * delegation it sets (workflow id `delegation-<delegationId>`, see workers/command-catalog.ts). At the
 * start, the pending requests waiting on the user who is away are told to review themselves (the
 * review re-routes them to the delegate, `.reroute`); at the end, those waiting on the delegate (or on
 * whom the delegate passed them to) are told, and go back. A period in force when it is set was
 * re-routed by its command already; telling those requests again changes nothing. A cancelled
 * delegation ends this workflow at its next wake-up (its command re-routed the requests itself).
 */

const { requestsAtDelegationBoundary } = proxyActivities<Activities>(RECORDING);

export interface DelegationWorkflowInput {
  delegationId: string;
  orgId: string;
  userId: string;
  /** ISO 8601; the end is exclusive. */
  start: string;
  end: string;
}

/** How many requests are told at once. */
const SIGNALS_AT_ONCE = 50;

export async function delegationWorkflow(input: DelegationWorkflowInput): Promise<{ told: number }> {
  let told = 0;
  for (const boundary of ['start', 'end'] as const) {
    const wait = Date.parse(boundary === 'start' ? input.start : input.end) - Date.now();
    if (wait > 0) await sleep(wait);
    const { workflowIds, over } = await requestsAtDelegationBoundary({ delegationId: input.delegationId, boundary });
    told += await tellToReview(workflowIds);
    if (over) break;
  }
  return { told };
}

/** Signals `review` to each request; one that ended meanwhile has nothing to review. */
async function tellToReview(workflowIds: readonly string[]): Promise<number> {
  let told = 0;
  for (let from = 0; from < workflowIds.length; from += SIGNALS_AT_ONCE) {
    const outcomes = await Promise.allSettled(workflowIds.slice(from, from + SIGNALS_AT_ONCE).map((id) => getExternalWorkflowHandle(id).signal(reviewSignal)));
    told += outcomes.filter((outcome) => outcome.status === 'fulfilled').length;
    const missed = outcomes.length - outcomes.filter((outcome) => outcome.status === 'fulfilled').length;
    if (missed > 0) log.info('requests that ended meanwhile were not told', { missed });
  }
  return told;
}
