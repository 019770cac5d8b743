import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Link, type Span } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, SimpleSpanProcessor, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
  type OpenTelemetrySinks,
} from '@temporalio/interceptors-opentelemetry';
import type { InjectedSinks, WorkerOptions } from '@temporalio/worker';
import type { WorkflowInfo } from '@temporalio/workflow';
import { headersToStrings } from '../events/cloudevents';
import type { InboundRecord } from '../events/dead-letters';
import type { Command } from '../events/inbound';
import type { ParsedRecord } from '../events/parse-record';
import { traceContextOf, withRemoteParent, type TraceContext } from '../events/trace-context';
import type { Config } from './config';

/**
 * OpenTelemetry tracing, off unless configured (TRACES_EXPORTER=otlp, or OTEL_EXPORTER_OTLP_ENDPOINT
 * set). Off, nothing is registered: the API's no-op tracer makes every span below a no-op, Temporal
 * gets no interceptors, and outbox rows get no traceparent.
 *
 * On, one trace runs from the Kafka record to the outbound events:
 *   inbound `traceparent` (CloudEvents distributed-tracing extension) -> the ingress's span per command
 *   (`ingress <type>`) -> Temporal's client interceptor (StartWorkflow / StartWorkflowUpdate, carried in
 *   Temporal headers) -> the workflow's spans (RunWorkflow, StartActivity) exported through a sink ->
 *   the activity's span (RunActivity), whose traceparent the outbox rows record -> the relay's producer
 *   span (`publish <topic>`), whose traceparent the event carries as `ce_traceparent`.
 */

export interface Tracing {
  processor: SpanProcessor;
  resource: Resource;
  /** Flushes and ends the exporter, and unregisters the global tracer, context manager and propagator. */
  shutdown(): Promise<void>;
}

let current: Tracing | null = null;

/** True when this process traces (startTracing ran). */
export function tracingOn(): boolean {
  return current !== null;
}

export function currentTracing(): Tracing | null {
  return current;
}

/** True when the configuration asks for traces to be exported. */
export function tracesConfigured(config: Pick<Config, 'TRACES_EXPORTER' | 'OTEL_EXPORTER_OTLP_ENDPOINT' | 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'>): boolean {
  if (config.TRACES_EXPORTER) return config.TRACES_EXPORTER === 'otlp';
  return Boolean(config.OTEL_EXPORTER_OTLP_ENDPOINT || config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/** The OTLP/HTTP traces URL: the traces endpoint as given, else the generic endpoint + /v1/traces (as the OTLP spec says). */
export function otlpTracesUrl(config: Pick<Config, 'OTEL_EXPORTER_OTLP_ENDPOINT' | 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'>): string | undefined {
  if (config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (config.OTEL_EXPORTER_OTLP_ENDPOINT) return `${config.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`;
  return undefined;
}

/**
 * Starts tracing for this process when the configuration asks for it, or when an exporter is given
 * (the tests' in-memory one); returns null (and does nothing) otherwise. Once per process: a second
 * call returns the running setup.
 */
export function startTracing(
  config: Pick<Config, 'TRACES_EXPORTER' | 'OTEL_EXPORTER_OTLP_ENDPOINT' | 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' | 'OTEL_SERVICE_NAME'>,
  options: { serviceName: string; exporter?: SpanExporter },
): Tracing | null {
  if (current) return current;
  if (!options.exporter && !tracesConfigured(config)) return null;
  const url = otlpTracesUrl(config);
  const processor = options.exporter ? new SimpleSpanProcessor(options.exporter) : new BatchSpanProcessor(new OTLPTraceExporter(url ? { url } : {}));
  const resource = Resource.default().merge(new Resource({ 'service.name': config.OTEL_SERVICE_NAME ?? options.serviceName }));
  const provider = new BasicTracerProvider({ resource, spanProcessors: [processor] });
  const contextManager = new AsyncLocalStorageContextManager();
  provider.register({ contextManager, propagator: new W3CTraceContextPropagator() });
  const setup: Tracing = {
    processor,
    resource,
    async shutdown() {
      if (current === setup) current = null;
      await provider.shutdown().catch(() => undefined);
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
  current = setup;
  return setup;
}

/** The workflow interceptors (Temporal's): registered in the worker, or bundled with the workflows, only when tracing. */
export const WORKFLOW_TRACING_MODULE = require.resolve('../workflows/tracing-interceptors');

/** The client's interceptors: the trace goes into the headers of workflow starts, Updates and signals. */
export function clientTracingOptions(): { interceptors?: { workflow: WorkflowClientInterceptor[] } } {
  return current ? { interceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] } } : {};
}

/** Workflow fields a workflow span may carry: ids only (never the memo or search attributes). */
function idsOf(info: WorkflowInfo): WorkflowInfo {
  const { workflowId, runId, workflowType, taskQueue, namespace } = info;
  return { workflowId, runId, workflowType, taskQueue, namespace } as WorkflowInfo;
}

/** Workflow spans leave the sandbox through this sink, to the same span processor. */
function workflowSinks(tracing: Tracing): InjectedSinks<OpenTelemetrySinks> {
  const { export: exporter } = makeWorkflowExporter(tracing.processor, tracing.resource);
  return { exporter: { export: { ...exporter, fn: (info, spans) => exporter.fn(idsOf(info), spans) } } };
}

/**
 * The worker's tracing options: the activity interceptor (a span per activity, the parent taken from
 * the headers), the workflow span sink and, unless the workflows come bundled (the bundle then must be
 * made with `workflowInterceptorModules: [WORKFLOW_TRACING_MODULE]`), the workflow interceptors.
 */
export function workerTracingOptions(bundled: boolean): Pick<WorkerOptions, 'interceptors' | 'sinks'> {
  if (!current) return {};
  return {
    interceptors: {
      activity: [(ctx) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx) })],
      ...(bundled ? {} : { workflowModules: [WORKFLOW_TRACING_MODULE] }),
    },
    sinks: workflowSinks(current) as WorkerOptions['sinks'],
  };
}

/** The sinks a replay worker needs for a bundle made with the tracing interceptors (spans are not exported during replay). */
export function replayTracingSinks(): Pick<WorkerOptions, 'sinks'> {
  return { sinks: { exporter: { export: { fn: () => undefined } } } as WorkerOptions['sinks'] };
}

const ingressTracer = () => trace.getTracer('selfservice-ingress');

/** The trace context a record names: from its parsed envelope, else (a refused record) from its binary-mode headers. */
function traceOfRecord(record: InboundRecord, parsed: ParsedRecord): TraceContext | undefined {
  if (parsed.ok) return parsed.trace;
  const headers = headersToStrings(record.headers as Record<string, unknown>);
  return traceContextOf({ traceparent: headers.ce_traceparent, tracestate: headers.ce_tracestate });
}

function recordAttributes(record: InboundRecord): Attributes {
  return {
    'messaging.system': 'kafka',
    'messaging.operation': 'process',
    'messaging.destination.name': record.topic,
    'messaging.destination.partition.id': String(record.partition),
    'messaging.kafka.message.offset': Number(record.offset),
  };
}

function commandAttributes(command: Command): Attributes {
  return { 'messaging.message.id': command.commandId, 'cloudevents.event_id': command.commandId, 'cloudevents.event_type': command.type, 'selfservice.command_id': command.commandId };
}

async function inSpan<T>(span: Span, parent: Context, work: () => Promise<T>): Promise<T> {
  try {
    return await context.with(trace.setSpan(parent, span), work);
  } catch (error) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.name : 'error' });
    throw error;
  } finally {
    span.end();
  }
}

/**
 * Runs the handling of one record in a span of its own, a child of the trace context the record
 * carries (a CONSUMER span `ingress <type>`); everything it does (the ledger's writes, the workflow
 * start or Update) happens in that span's context. Off: just `work()`.
 */
export async function inCommandSpan<T>(record: InboundRecord, parsed: ParsedRecord, work: () => Promise<T>): Promise<T> {
  if (!current) return work();
  const parent = withRemoteParent(ROOT_CONTEXT, traceOfRecord(record, parsed));
  const name = parsed.ok ? `ingress ${parsed.command.type}` : `ingress refused record`;
  const attributes = { ...recordAttributes(record), ...(parsed.ok ? commandAttributes(parsed.command) : { 'selfservice.refusal': parsed.code }) };
  const span = ingressTracer().startSpan(name, { kind: SpanKind.CONSUMER, attributes }, parent);
  return inSpan(span, parent, work);
}

/**
 * Runs a group of one-transaction commands (applied in one database transaction) in one span, linked
 * to the trace context of each command that carries one, and a child of it when the group is of one
 * command. Off: just `work()`.
 */
export async function inGroupSpan<T>(group: readonly { record: InboundRecord; command: Command; trace?: TraceContext }[], work: () => Promise<T>): Promise<T> {
  if (!current) return work();
  const only = group.length === 1 ? group[0] : undefined;
  const parent = withRemoteParent(ROOT_CONTEXT, only?.trace);
  const links: Link[] = group.flatMap(({ trace: remote }) => {
    const linked = remote ? trace.getSpanContext(withRemoteParent(ROOT_CONTEXT, remote)) : undefined;
    return linked && !only ? [{ context: linked }] : [];
  });
  const first = group[0]!;
  const attributes = { ...recordAttributes(first.record), 'messaging.batch.message_count': group.length, ...(only ? commandAttributes(only.command) : {}) };
  const span = ingressTracer().startSpan(only ? `ingress ${only.command.type}` : 'ingress apply group', { kind: SpanKind.CONSUMER, attributes, links }, parent);
  return inSpan(span, parent, work);
}
