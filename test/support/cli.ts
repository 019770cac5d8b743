import { spawn } from 'node:child_process';
import path from 'node:path';
import type { TestBackend } from './backend';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `workers/cli.ts` as its own process against the test backend's database, topics, task queue and key. */
export function runCli(backend: TestBackend, ...args: string[]): Promise<CliRun> {
  const root = path.resolve(__dirname, '..', '..');
  const { DATABASE_URL, KAFKA_TOPIC_NAMESPACE, TEMPORAL_TASK_QUEUE, PAYLOAD_ENCRYPTION_KEY, PAYLOAD_ENCRYPTION_KEY_ID } = backend.config;
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(root, 'node_modules', '.bin', 'tsx'), [path.join(root, 'workers', 'cli.ts'), ...args], {
      cwd: root,
      env: { ...process.env, DATABASE_URL, KAFKA_TOPIC_NAMESPACE, TEMPORAL_TASK_QUEUE, PAYLOAD_ENCRYPTION_KEY, PAYLOAD_ENCRYPTION_KEY_ID },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
