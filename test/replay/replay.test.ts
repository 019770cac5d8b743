import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { dataConverterFor } from '../../workers/payload-codec';
import { HISTORY_DIR } from '../support/histories';
import { testConfig } from '../support/test-config';

/**
 * Replays committed histories of finished workflows against today's workflow code. A change to a
 * shipped workflow that alters its command order without `patched()` fails here, before it can
 * break requests that are running in production.
 */
const histories = readdirSync(HISTORY_DIR)
  .filter((file) => file.endsWith('.json'))
  .sort();

describe('replay of committed workflow histories', () => {
  test('the committed set covers every shipped outcome', () => {
    expect(histories).toEqual(
      expect.arrayContaining([
        'admin-command-org-upserted.json',
        'app-request-auto-grant.json',
        'app-request-three-step-chain.json',
        'app-request-denied.json',
        'app-request-expired.json',
        'app-request-cancelled.json',
        'personal-app-added.json',
        'personal-apps-moved.json',
        'technical-contact-message-sent.json',
      ]),
    );
  });

  test.each(histories)('%s replays without non-determinism', async (file) => {
    const history = JSON.parse(readFileSync(path.join(HISTORY_DIR, file), 'utf8'));
    const workflowBundle = { code: readFileSync(process.env.SELFSERVICE_WORKFLOW_BUNDLE!, 'utf8') };
    await expect(Worker.runReplayHistory({ workflowBundle, dataConverter: dataConverterFor(testConfig()) }, history, file)).resolves.toBeUndefined();
  });
});

describe('the replay check itself', () => {
  test('a workflow whose commands changed order is caught as non-deterministic', async () => {
    const history = JSON.parse(readFileSync(path.join(HISTORY_DIR, 'app-request-auto-grant.json'), 'utf8'));
    const workflowBundle = await bundleWorkflowCode({ workflowsPath: require.resolve('./fixtures/reordered-app-request') });
    await expect(Worker.runReplayHistory({ workflowBundle, dataConverter: dataConverterFor(testConfig()) }, history)).rejects.toThrow(DeterminismViolationError);
  });
});
