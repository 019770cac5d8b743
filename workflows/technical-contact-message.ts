import { ActivityFailure, ApplicationFailure, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CommandResult } from '../rules/commands';
import type { TechnicalContactEmailOutcome, TechnicalContactMessageCommand } from '../activities/technical-contact-messages';
import { endingOnPermanentFailure } from './command-failure';
import { RECORDING } from './activity-options';
import { publishedByRelay } from './outbox';

const { applyTechnicalContactMessage, recordTechnicalContactEmailOutcome } = proxyActivities<Activities>(RECORDING);

/**
 * SMTP outages are ridden out for up to 30 minutes (2 s, 4 s, 8 s ... then every minute); after that the
 * email is reported failed. A missing or inactive Technical Contact at send time fails at once.
 */
const { sendTechnicalContactEmail } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  scheduleToCloseTimeout: '30 minutes',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/** "CODE: message" of a final refusal, or the timeout and the last SMTP error behind it. */
function failureReason(error: ActivityFailure): string {
  const reasons: string[] = [];
  for (let cause: unknown = error.cause; cause instanceof Error; cause = cause.cause) {
    const label = cause instanceof ApplicationFailure && cause.type ? cause.type : cause.name;
    reasons.push(`${label}: ${cause.message}`);
  }
  return reasons.length > 0 ? reasons.join(' <- ') : error.message;
}

/**
 * A user's "Request an app" message to the Technical Contact. The command's result goes out as soon as
 * the message is accepted; the email follows, and its outcome (sent with the SMTP message id, or failed
 * after the retries) is announced. Workflow id `technical-contact-message-<ce_id>`.
 */
export async function technicalContactMessageWorkflow(command: TechnicalContactMessageCommand): Promise<CommandResult> {
  const result = await endingOnPermanentFailure(command, async () => {
    const applied = await applyTechnicalContactMessage(command, workflowInfo().workflowId);
    await publishedByRelay(applied.eventIds);
    return applied;
  });
  if (result.outcome !== 'ACCEPTED') return result;

  const messageId = result.details.messageId as string;
  let outcome: TechnicalContactEmailOutcome;
  try {
    const sent = await sendTechnicalContactEmail({ messageId, message: command.data.message });
    outcome = { status: 'SENT', ...sent };
  } catch (error) {
    if (!(error instanceof ActivityFailure)) throw error;
    outcome = { status: 'FAILED', error: failureReason(error) };
  }
  const eventId = await recordTechnicalContactEmailOutcome({ commandId: command.commandId, messageId, outcome });
  await publishedByRelay([eventId]);
  return result;
}
