import { patched, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { RECORDING } from './activity-options';

const { publishEvents } = proxyActivities<Activities>(RECORDING);

/**
 * Since this patch the outbox relay (workers/outbox-relay.ts) publishes every event that a transaction
 * wrote; workflows publish nothing. Histories recorded before it replay their `publishEvents` calls.
 */
const RELAY_PUBLISHES = 'outbox-relay-publishes';

/** Publishes the given outbox events in histories from before the relay; nothing otherwise. */
export async function publishedByRelay(eventIds: string[]): Promise<void> {
  if (patched(RELAY_PUBLISHES)) return;
  await publishEvents(eventIds);
}
