import { getExternalWorkflowHandle, log, patched, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CommandResult } from '../rules/commands';
import type { Command } from '../events/inbound';
import { reviewSignal } from './app-request';
import { endingOnPermanentFailure } from './command-failure';
import { RECORDING } from './activity-options';

const { applyAdminCommand, publishEvents, pendingRequestsAffectedBy } = proxyActivities<Activities>(RECORDING);

/**
 * Since this patch, the pending requests a change affects are told before the command's result goes
 * out: once a producer sees the result (say, an admin deactivated), every request already knows, and
 * a decision sent after it is checked against the changed directory.
 */
const SIGNAL_BEFORE_RESULT = 'signal-before-result';

/**
 * One directory or admin command: apply it once (state, result, audit and outbound events in one
 * transaction), then publish its events. Workflow id `command-<ce_id>`, so a redelivery cannot start
 * a second run. Pending requests that the change may affect are asked to review themselves.
 */
export async function adminCommandWorkflow(command: Command): Promise<CommandResult> {
  return endingOnPermanentFailure(command, async () => {
    const applied = await applyAdminCommand(command);
    if (patched(SIGNAL_BEFORE_RESULT)) {
      if (applied.outcome === 'ACCEPTED') await askAffectedRequestsToReview(command);
      await publishEvents(applied.eventIds);
    } else {
      await publishEvents(applied.eventIds);
      if (applied.outcome === 'ACCEPTED') await askAffectedRequestsToReview(command);
    }
    return applied;
  });
}

async function askAffectedRequestsToReview(command: Command): Promise<void> {
  for (const workflowId of await pendingRequestsAffectedBy(command)) {
    try {
      await getExternalWorkflowHandle(workflowId).signal(reviewSignal);
    } catch (error) {
      // The request ended meanwhile: nothing to review.
      log.info('request no longer running', { workflowId, error: String(error) });
    }
  }
}
