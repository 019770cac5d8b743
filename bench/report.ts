import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BenchOptions } from './options';
import type { ScenarioResult } from './scenarios/scenario';

export interface BenchReport {
  run: string;
  startedAt: string;
  finishedAt: string;
  machine: { cpus: number; cpuModel: string; memoryBytes: number; node: string; platform: string };
  options: BenchOptions;
  backend: { parts: string[]; workerPlacement: string; database: string; topicNamespace: string; taskQueue: string; temporal: string };
  demoOrg: Record<string, unknown> | null;
  scenarios: ScenarioResult[];
  failures: { scenario: string; error: string }[];
}

export function machine(): BenchReport['machine'] {
  return { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryBytes: os.totalmem(), node: process.version, platform: `${os.platform()} ${os.release()}` };
}

export function writeReport(report: BenchReport, file: string): string {
  const target = path.resolve(file);
  mkdirSync(path.dirname(target), { recursive: true });
  writeFileSync(target, `${JSON.stringify(report, null, 2)}\n`);
  return target;
}

/** The report as a table a person reads: one block per scenario, system | baseline | ratio. */
export function formatReport(report: BenchReport): string {
  const widths = [40, 14, 14, 9];
  const line = (cells: string[]) => cells.map((cell, index) => (index === 0 ? cell.padEnd(widths[0]!) : cell.padStart(widths[index]!))).join('  ');
  const out: string[] = [
    '',
    `benchmark ${report.run}: ${report.machine.cpus} CPUs, Node ${report.machine.node}; backend ${report.backend.parts.join(' + ')}`,
    `Temporal ${report.backend.temporal}, task queue ${report.backend.taskQueue}, topics ${report.backend.topicNamespace}*, database ${report.backend.database}`,
  ];
  if (report.demoOrg) out.push(`demo org through Kafka: ${JSON.stringify(report.demoOrg)}`);
  for (const scenario of report.scenarios) {
    out.push('', `${scenario.title}${scenario.complete ? '' : '  [PARTIAL]'}`, line(['', 'system', 'baseline', 'ratio']));
    for (const row of scenario.rows) out.push(line([row.metric, row.system, row.baseline, row.ratio]));
    for (const note of scenario.notes) out.push(`  - ${note}`);
  }
  for (const failure of report.failures) out.push('', `FAILED ${failure.scenario}: ${failure.error}`);
  out.push('', 'ratios are system / bare-Temporal baseline measured in this run (held: held / idle); p99 of fewer than 100 samples is the slowest one.');
  return out.join('\n');
}
