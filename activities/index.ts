import type { EventPublisher } from '../events/publisher';
import { createAdminCommandActivities } from './admin-commands';
import type { Database } from './database';
import type { Mailer } from './mailer';
import { createOutboxActivities } from './outbox';

export interface ActivityDependencies {
  db: Database;
  publisher: EventPublisher;
  mailer: Mailer;
}

/** Every activity the worker registers; the workflows' `proxyActivities` types derive from this. */
export function createActivities(deps: ActivityDependencies) {
  return {
    ...createAdminCommandActivities(deps),
    ...createOutboxActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
