import type { EventPublisher } from '../events/publisher';
import { createAdminCommandActivities } from './admin-commands';
import type { Database } from './database';
import { createOutboxActivities } from './outbox';

export interface ActivityDependencies {
  db: Database;
  publisher: EventPublisher;
}

/** Every activity the worker registers; the workflows' `proxyActivities` types derive from this. */
export function createActivities(deps: ActivityDependencies) {
  return {
    ...createAdminCommandActivities(deps),
    ...createOutboxActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
