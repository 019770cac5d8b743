import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { Command } from '../events/inbound';
import type { CommandResult } from '../activities/command-ledger';

const { applyAdminCommand, publishEvents } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/**
 * One directory or admin command: apply it once (state, result, audit and outbound events in one
 * transaction), then publish its events. Workflow id `command-<ce_id>`, so a redelivery cannot start
 * a second run.
 */
export async function adminCommandWorkflow(command: Command): Promise<CommandResult> {
  const result = await applyAdminCommand(command);
  await publishEvents(result.eventIds);
  return result;
}
