import type { ActivityOptions } from '@temporalio/workflow';

/**
 * How workflows call the activities that record state (PostgreSQL) and publish it (Kafka). A transient
 * failure (a service down) is retried without end, at most 5 s apart, so that work resumes within
 * seconds of the service's return; a permanent one is marked non-retryable by the activity itself
 * (activities/failures.ts) and ends at once. A worker that dies mid-activity is noticed after 15 s.
 */
export const RECORDING: ActivityOptions = {
  startToCloseTimeout: '15 seconds',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '5 seconds' },
};
