import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { testDatabaseUrl, testOwnerDatabaseUrl } from './test-config';

const root = path.resolve(__dirname, '..', '..');

/**
 * Runs once before the suite: starts the local services that are not already running (the project's
 * own script, which also makes the database roles), applies the migrations to the test database as
 * its owner, and bundles the workflows once. The backend under test connects as the application role.
 */
export default async function globalSetup(): Promise<void> {
  execFileSync('bash', [path.join(root, 'services', 'stack.sh'), 'start'], { stdio: 'inherit' });
  execFileSync('npx', ['prisma', 'migrate', 'deploy'], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, MIGRATION_DATABASE_URL: testOwnerDatabaseUrl(), DATABASE_URL: testOwnerDatabaseUrl() },
  });
  testDatabaseUrl(); // fails here, with what to do, when the application role has no local password
  const { code } = await bundleWorkflowCode({ workflowsPath: path.join(root, 'workflows', 'index.ts') });
  const bundleDir = path.join(root, '.stack', 'test');
  mkdirSync(bundleDir, { recursive: true });
  const bundlePath = path.join(bundleDir, 'workflow-bundle.js');
  writeFileSync(bundlePath, code);
  process.env.SELFSERVICE_WORKFLOW_BUNDLE = bundlePath;
}
