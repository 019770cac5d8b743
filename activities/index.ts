import type { Command } from '../events/inbound';
import type { EventPublisher } from '../events/publisher';
import { createAdminCommandActivities, type HandlerLookup } from './admin-commands';
import { createAppRequestActivities } from './app-requests';
import { recordFailed } from './command-ledger';
import { createDelegationActivities } from './delegations';
import type { Database } from './database';
import { classifyingFailures } from './failures';
import type { Mailer } from './mailer';
import { createOutboxActivities } from './outbox';
import { createPersonalAppActivities } from './personal-apps';
import { createTechnicalContactMessageActivities } from './technical-contact-messages';

export interface ActivityDependencies {
  db: Database;
  publisher: EventPublisher;
  mailer: Mailer;
  handlerFor: HandlerLookup;
}

/**
 * Every activity the worker registers; the workflows' `proxyActivities` types derive from this. Each
 * is wrapped so that a permanent failure ends its command instead of being retried for ever.
 */
export function createActivities(deps: ActivityDependencies) {
  return classifyingFailures({
    ...createAdminCommandActivities(deps),
    ...createAppRequestActivities(deps),
    ...createDelegationActivities(deps),
    ...createOutboxActivities(deps),
    ...createPersonalAppActivities(deps),
    ...createTechnicalContactMessageActivities(deps),
    recordCommandFailed: ({ command, incidentId }: { command: Command; incidentId: string }) => recordFailed(deps.db, command, incidentId),
  });
}

export type Activities = ReturnType<typeof createActivities>;
