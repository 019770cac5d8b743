import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CommandResult } from '../rules/commands';
import type { PersonalAppAddCommand, PersonalAppMoveCommand } from '../activities/personal-apps';
import { endingOnPermanentFailure } from './command-failure';
import { RECORDING } from './activity-options';
import { publishedByRelay } from './outbox';

const { applyPersonalAppAdd, applyPersonalAppMove } = proxyActivities<Activities>(RECORDING);

/**
 * A user adds a catalog app as a personal tile: no approval, so one step (apply through the command
 * ledger: tile, result, audit and announcement in one transaction), then publish. Workflow id
 * `personal-app-add-<ce_id>`.
 */
export async function personalAppAddWorkflow(command: PersonalAppAddCommand): Promise<CommandResult> {
  return endingOnPermanentFailure(command, async () => {
    const result = await applyPersonalAppAdd(command, workflowInfo().workflowId);
    await publishedByRelay(result.eventIds);
    return result;
  });
}

/**
 * A user moves personal apps to Okta Personal: each app gets its verdict, the moved ones are exported
 * in one announcement. Workflow id `personal-app-move-<ce_id>`.
 */
export async function personalAppMoveWorkflow(command: PersonalAppMoveCommand): Promise<CommandResult> {
  return endingOnPermanentFailure(command, async () => {
    const result = await applyPersonalAppMove(command, workflowInfo().workflowId);
    await publishedByRelay(result.eventIds);
    return result;
  });
}
