import {
  OpenTelemetryInboundInterceptor,
  OpenTelemetryInternalsInterceptor,
  OpenTelemetryOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry/lib/workflow';
import type { WorkflowInterceptorsFactory } from '@temporalio/workflow';

/**
 * Temporal's OpenTelemetry workflow interceptors (a span per workflow run, Update, signal and scheduled
 * activity; the trace context taken from and passed on in Temporal headers). Registered only when the
 * worker traces (workers/tracing.ts). Temporal's own code, gated by SDK flags, so histories recorded
 * without it replay with it (test/replay).
 */
export const interceptors: WorkflowInterceptorsFactory = () => ({
  inbound: [new OpenTelemetryInboundInterceptor()],
  outbound: [new OpenTelemetryOutboundInterceptor()],
  internals: [new OpenTelemetryInternalsInterceptor()],
});
