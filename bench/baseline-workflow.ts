import { proxyActivities } from '@temporalio/workflow';

const { noop } = proxyActivities<{ noop(): Promise<void> }>({ startToCloseTimeout: '30 seconds' });

/** The bare-Temporal baseline: one workflow, one activity that does nothing. */
export async function baselineWorkflow(): Promise<void> {
  await noop();
}
