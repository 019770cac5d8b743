import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RoundFindings } from './audit';

/** The budget: processing must go on within this many seconds after a fault ends. */
export const RESUME_LIMIT_SECONDS = 30;

/** Why a round failed; empty when it passed. */
export function problemsOf(round: RoundFindings): string[] {
  const problems: string[] = [];
  if (round.lostResults > 0) problems.push(`${round.lostResults} command(s) without a result`);
  if (round.doubledResults > 0) problems.push(`${round.doubledResults} command(s) with two different results`);
  if (round.grantedTwice > 0) problems.push(`${round.grantedTwice} request(s) granted twice`);
  if (round.grantedNever > 0) problems.push(`${round.grantedNever} request(s) never granted`);
  if (round.emailsDoubled > 0) problems.push(`${round.emailsDoubled} email notice(s) doubled`);
  if (round.emailsMissing > 0) problems.push(`${round.emailsMissing} email notice(s) never received`);
  if (round.pendingAtFaultEnd > 0) {
    if (round.resumeSeconds === null) problems.push(`processing never resumed (${round.pendingAtFaultEnd} open at the end of the fault)`);
    else if (round.resumeSeconds > RESUME_LIMIT_SECONDS) problems.push(`processing resumed only after ${round.resumeSeconds.toFixed(1)} s`);
  }
  if (round.handoverSeconds !== null && round.handoverSeconds > RESUME_LIMIT_SECONDS) {
    problems.push(`requests sent after the fault began reached Temporal only ${round.handoverSeconds.toFixed(1)} s after it ended`);
  }
  if (round.fault === 'smtp-cut') {
    if (round.mailResumeSeconds === null) problems.push('no email was delivered after SMTP came back');
    else if (round.mailResumeSeconds > RESUME_LIMIT_SECONDS) problems.push(`emails resumed only after ${round.mailResumeSeconds.toFixed(1)} s`);
  }
  return problems;
}

const fmt = (value: number | null) => (value === null ? '-' : value.toFixed(1));

export function formatTable(rounds: RoundFindings[]): string {
  const header = ['fault', 'requests', 'lost results', 'doubled results', 'granted twice', 'granted never', 'emails doubled', 'emails missing', 'resume s', 'handover s', 'new work s', 'mail resume s', 'round s', 'verdict'];
  const rows = rounds.map((round) => [
    round.fault,
    `${round.requests} (${round.approvalRequests} appr.)`,
    String(round.lostResults),
    String(round.doubledResults),
    String(round.grantedTwice),
    String(round.grantedNever),
    String(round.emailsDoubled),
    String(round.emailsMissing),
    round.pendingAtFaultEnd === 0 && round.resumeSeconds === null ? 'n/a' : round.resumeSeconds === null ? 'never' : fmt(round.resumeSeconds),
    fmt(round.handoverSeconds),
    fmt(round.newWorkSeconds),
    fmt(round.mailResumeSeconds),
    round.roundSeconds === null ? 'unfinished' : fmt(round.roundSeconds),
    problemsOf(round).length === 0 ? 'ok' : 'FAIL',
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) => `| ${cells.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

export interface ChaosReport {
  startedAt: string;
  finishedAt: string;
  seconds: number;
  passed: boolean;
  resumeLimitSeconds: number;
  code: Record<string, string>;
  stack: Record<string, string>;
  rounds: (RoundFindings & { problems: string[] })[];
  notes: string[];
}

export function writeReport(file: string, report: ChaosReport): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
}

/** Which code ran: HEAD and a digest of the uncommitted changes (others edit the backend meanwhile). */
export function codeState(root: string): Record<string, string> {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  try {
    const diff = git('diff', 'HEAD');
    const changed = git('status', '--porcelain').split('\n').filter(Boolean).length;
    return { head: git('rev-parse', '--short', 'HEAD').trim(), uncommittedFiles: String(changed), diffSha1: createHash('sha1').update(diff).digest('hex').slice(0, 12) };
  } catch {
    return { head: 'unknown' };
  }
}

/**
 * Runs a suite's `main` as the process: its exit code (0 passed, 1 failed), 2 when the run itself broke.
 * kafkajs and pg may keep timers after they close; the verdict is in the exit code, so the process ends
 * shortly after.
 */
export function runSuite(label: string, main: () => Promise<number>): void {
  main()
    .then((code) => {
      process.exitCode = code;
    })
    .catch((error: unknown) => {
      console.error(`${label}: the run itself failed:`, error instanceof Error ? (error.stack ?? error.message) : error);
      process.exitCode = 2;
    })
    .finally(() => {
      setTimeout(() => process.exit(), 2000).unref();
    });
}
