import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';

export const HISTORY_DIR = path.join(__dirname, '..', 'replay', 'histories');
/** Histories from before the patches `app-request-v2` and `outbox-relay-publishes`, and of `adminCommandWorkflow`: kept, never re-recorded. */
export const LEGACY_HISTORY_DIR = path.join(HISTORY_DIR, 'legacy');

/**
 * With RECORD_WORKFLOW_HISTORIES=1, saves the finished workflow's history for the replay tests
 * (test/replay). Run the suite that way after changing a workflow on purpose, then commit the files.
 */
export async function recordHistory(handle: WorkflowHandle, name: string): Promise<void> {
  if (process.env.RECORD_WORKFLOW_HISTORIES !== '1') return;
  const history = await handle.fetchHistory();
  writeFileSync(path.join(HISTORY_DIR, `${name}.json`), historyToJSON(history));
}
