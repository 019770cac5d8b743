import { ActivityFailure, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { Command } from '../events/inbound';
import { RECORDING } from './activity-options';
import { publishedByRelay } from './outbox';

/** The failure type that activities give a permanent failure (see activities/failures.ts). */
const PERMANENT_FAILURE = 'PERMANENT_FAILURE';

const { recordCommandFailed } = proxyActivities<Activities>(RECORDING);

/** The incident id of a permanent activity failure, or null for any other error. */
export function permanentIncident(error: unknown): string | null {
  if (!(error instanceof ActivityFailure)) return null;
  const cause = error.cause;
  if (!(cause instanceof ApplicationFailure) || cause.type !== PERMANENT_FAILURE) return null;
  const [incidentId] = (cause.details ?? []) as unknown[];
  return typeof incidentId === 'string' ? incidentId : 'unknown';
}

/**
 * Runs a command's workflow; when an activity fails permanently (bad data, a bug), the command ends
 * with an INTERNAL_ERROR result naming the incident and a dead-letter copy, and the workflow fails with
 * the incident id so operators see it in the Web UI. Other commands are not held up.
 */
export async function endingOnPermanentFailure<T>(command: Command, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    const incidentId = permanentIncident(error);
    if (!incidentId) throw error;
    const failed = await recordCommandFailed({ command, incidentId });
    await publishedByRelay(failed.eventIds);
    throw ApplicationFailure.create({
      type: 'INTERNAL_ERROR',
      message: `command ${command.commandId} failed permanently (incident ${incidentId})`,
      nonRetryable: true,
      details: [incidentId],
    });
  }
}
