import { condition, defineQuery, defineUpdate, proxyActivities, setHandler } from '@temporalio/workflow';

const { noop } = proxyActivities<{ noop(): Promise<void> }>({ startToCloseTimeout: '30 seconds' });

/** The bare-Temporal baseline: one workflow, one activity that does nothing. */
export async function baselineWorkflow(): Promise<void> {
  await noop();
}

export const pingUpdate = defineUpdate<string>('ping');
export const readyQuery = defineQuery<boolean>('ready');

/**
 * The bare-Temporal baseline of a decision: a workflow that waits for one Update `ping`, answers it at
 * once and ends. The decision's Update on a request does its work in activities; this one does none.
 */
export async function pingWorkflow(): Promise<void> {
  let pinged = false;
  setHandler(readyQuery, () => true);
  setHandler(pingUpdate, () => {
    pinged = true;
    return 'pong';
  });
  await condition(() => pinged);
}
