import { getExternalWorkflowHandle, log, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CommandResult } from '../activities/command-ledger';
import type { Command } from '../events/inbound';
import { reviewSignal } from './app-request';
import { endingOnPermanentFailure } from './command-failure';
import { RECORDING } from './activity-options';

const { applyAdminCommand, publishEvents, pendingRequestsAffectedBy } = proxyActivities<Activities>(RECORDING);

/**
 * One directory or admin command: apply it once (state, result, audit and outbound events in one
 * transaction), then publish its events. Workflow id `command-<ce_id>`, so a redelivery cannot start
 * a second run. Pending requests that the change may affect are asked to review themselves.
 */
export async function adminCommandWorkflow(command: Command): Promise<CommandResult> {
  const result = await endingOnPermanentFailure(command, async () => {
    const applied = await applyAdminCommand(command);
    await publishEvents(applied.eventIds);
    return applied;
  });
  if (result.outcome === 'ACCEPTED') {
    for (const workflowId of await pendingRequestsAffectedBy(command)) {
      try {
        await getExternalWorkflowHandle(workflowId).signal(reviewSignal);
      } catch (error) {
        // The request ended meanwhile: nothing to review.
        log.info('request no longer running', { workflowId, error: String(error) });
      }
    }
  }
  return result;
}
