import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { dataConverterFor } from '../../workers/payload-codec';
import { HISTORY_DIR, LEGACY_HISTORY_DIR } from '../support/histories';
import { testConfig } from '../support/test-config';
import { replayTracingSinks, WORKFLOW_TRACING_MODULE } from '../../workers/tracing';

/**
 * Replays committed histories of finished workflows against today's workflow code. A change to a
 * shipped workflow that alters its command order without `patched()` fails here, before it can
 * break requests that are running in production. `histories/` holds today's recordings (re-recorded
 * after an intended change); `histories/legacy/` keeps those from before the patches `app-request-v2`
 * (workflows/app-request-legacy.ts) and `outbox-relay-publishes` (workflows/outbox.ts), and of
 * `adminCommandWorkflow`, which no new command starts: they must go on replaying.
 */
const jsonIn = (dir: string) =>
  readdirSync(dir)
    .filter((file) => file.endsWith('.json'))
    .sort();
const current = jsonIn(HISTORY_DIR);
const legacy = jsonIn(LEGACY_HISTORY_DIR);
const histories = [...current.map((file) => path.join(HISTORY_DIR, file)), ...legacy.map((file) => path.join(LEGACY_HISTORY_DIR, file))].map((file) => [
  path.relative(HISTORY_DIR, file),
  file,
]);
const APP_REQUEST_OUTCOMES = [
  'app-request-auto-grant.json',
  'app-request-three-step-chain.json',
  'app-request-denied.json',
  'app-request-expired.json',
  'app-request-cancelled.json',
  'app-request-reminded-then-approved.json',
];

describe('replay of committed workflow histories', () => {
  test('the committed set covers every shipped outcome', () => {
    expect(legacy).toEqual(
      expect.arrayContaining([
        ...APP_REQUEST_OUTCOMES,
        'admin-command-org-upserted.json',
        'personal-app-added.json',
        'personal-apps-moved.json',
        'technical-contact-message-sent.json',
      ]),
    );
    expect(current).toEqual(
      expect.arrayContaining([
        ...APP_REQUEST_OUTCOMES,
        // Recorded before the patch `app-request-local-mail` (an auto-grant's email as a regular activity).
        'app-request-auto-grant-before-local-mail.json',
        'personal-app-added.json',
        'personal-apps-moved.json',
        'technical-contact-message-sent.json',
      ]),
    );
  });

  test.each(histories)('%s replays without non-determinism', async (name, file) => {
    const history = JSON.parse(readFileSync(file, 'utf8'));
    const workflowBundle = { code: readFileSync(process.env.SELFSERVICE_WORKFLOW_BUNDLE!, 'utf8') };
    await expect(Worker.runReplayHistory({ workflowBundle, dataConverter: dataConverterFor(testConfig()) }, history, name)).resolves.toBeUndefined();
  });
});

describe('replay with the tracing interceptors (a worker that starts tracing replays what ran without it)', () => {
  let workflowBundle: { code: string };
  beforeAll(async () => {
    workflowBundle = await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), workflowInterceptorModules: [WORKFLOW_TRACING_MODULE] });
  });

  test.each(histories)('%s replays without non-determinism', async (name, file) => {
    const history = JSON.parse(readFileSync(file, 'utf8'));
    await expect(Worker.runReplayHistory({ workflowBundle, dataConverter: dataConverterFor(testConfig()), ...replayTracingSinks() }, history, name)).resolves.toBeUndefined();
  });
});

describe('the replay check itself', () => {
  test.each([
    ['today', HISTORY_DIR],
    ['legacy', LEGACY_HISTORY_DIR],
  ])('a workflow whose commands changed order is caught as non-deterministic (%s auto-grant history)', async (_, dir) => {
    const history = JSON.parse(readFileSync(path.join(dir, 'app-request-auto-grant.json'), 'utf8'));
    const workflowBundle = await bundleWorkflowCode({ workflowsPath: require.resolve('./fixtures/reordered-app-request') });
    await expect(Worker.runReplayHistory({ workflowBundle, dataConverter: dataConverterFor(testConfig()) }, history)).rejects.toThrow(DeterminismViolationError);
  });
});
