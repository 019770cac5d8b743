import type { BenchBackend } from '../backend';
import type { CommandChannel, OutgoingCommand } from '../command-channel';
import type { DemoOrg, RequestPair } from '../demo-org';
import type { BenchOptions, ScenarioName } from '../options';
import type { OutboundWatch } from '../outbound-watch';
import type { LatencySummary } from '../stats';
import type { TemporalBaseline } from '../temporal-baseline';

/** What every scenario gets: the running backend, a Kafka client of it, the demo org, bare Temporal. */
export interface ScenarioContext {
  backend: BenchBackend;
  channel: CommandChannel;
  watch: OutboundWatch;
  org: DemoOrg;
  baseline: TemporalBaseline;
  options: BenchOptions;
  /** Auto-grant latency on an idle system, once the sequential scenario has measured it. */
  idleAutoGrant?: LatencySummary;
}

/** One line of the table: a metric of the system, of its baseline, and their ratio. */
export interface ReportRow {
  metric: string;
  system: string;
  baseline: string;
  ratio: string;
}

export interface ScenarioResult {
  name: ScenarioName;
  title: string;
  /** False when a wait ran out and the numbers are partial. */
  complete: boolean;
  system: Record<string, unknown>;
  baseline: Record<string, unknown> | null;
  ratios: Record<string, number | null>;
  rows: ReportRow[];
  notes: string[];
}

export type Scenario = (context: ScenarioContext) => Promise<ScenarioResult>;

export const APP_REQUESTED = 'selfservice.app.requested.v1';
export const APP_REQUEST_DECIDED = 'selfservice.app-request.decided.v1';

export function appRequested(org: DemoOrg, pair: RequestPair): OutgoingCommand {
  return { topic: 'userRequests', type: APP_REQUESTED, data: { orgId: org.orgId, userId: pair.userId, appId: pair.appId } };
}

export const ms = (value: number | null | undefined) => (value === null || value === undefined ? '-' : `${Math.round(value)} ms`);
export const rate = (value: number | null | undefined) => (value === null || value === undefined ? '-' : `${value.toFixed(1)} /s`);
export const times = (value: number | null | undefined) => (value === null || value === undefined ? '-' : `${value.toFixed(2)}x`);
export const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;

/** How many arrived out of how many, for a note when a wait ran out. */
export function partialNote(what: string, arrived: number, expected: number, timeoutSeconds: number): string[] {
  return arrived < expected ? [`PARTIAL: ${arrived} of ${expected} ${what} within the ${timeoutSeconds} s timeout; rates use what arrived`] : [];
}
