import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { verifyStoredAuditChain, type StoredAuditChainVerdict } from '../../activities/audit-chain';
import {
  AUDIT_CHAIN_GENESIS,
  AuditChainCollector,
  type AuditChainHead,
  type AuditChainVerdict,
  type AuditChainVerifierOptions,
  type ChainedAuditEntry,
} from '../../rules/audit-chain';
import { helpText, parseArgs, positionals, UsageError, type CliCommand, type CommandSpec } from './args';
import { withDatabase } from './output';

const spec: CommandSpec = {
  name: 'audit verify',
  summary: "checks an org's tamper-evident audit chain, in the database or in an export file",
  details: [
    "Each org's audit entries are chained: entry n holds its place (chainSequence n), the hash of the org's",
    'entry n-1 (previousHash) and its own hash, SHA-256 over a canonical encoding of its content, place and',
    'previousHash (rules/audit-chain.ts, README). With --org, the chain is recomputed from the database and',
    "checked against the org's chain head. With --file, an `audit export` file is checked offline, each org",
    'of it (or only --org). Prints OK with the number of entries and the last hash, or names the first entry',
    'that breaks the chain (its id, its place and what is wrong: its content changed, the entry before it',
    'changed or replaced, entries missing) and exits 1. Entries not sealed yet (a second or so after they',
    'are written) are counted, not checked.',
    '',
    'Whoever can write the database can also recompute a whole chain after changing an entry. Keep the last',
    'sequence and hash printed (or the last line of an export) outside the database, and give them later as',
    '--anchor: the chain must still hold that entry with that hash.',
  ],
  options: [
    { name: 'org', value: 'ORG', description: "the org whose chain to check (required without --file)" },
    { name: 'file', value: 'FILE', description: 'check an `audit export` file (JSON lines) instead of the database' },
    { name: 'allow-gaps', description: 'with --file, for a filtered export: check each entry and the links between consecutive ones' },
    { name: 'anchor', value: 'SEQ:HASH', description: "a place and hash noted earlier: the org's chain must still hold it (needs --org)" },
    { name: 'json', description: 'one JSON object per org instead of text' },
  ],
  examples: [
    'audit verify --org org-acme',
    'audit verify --file audit-november.jsonl --org org-acme',
    'audit verify --org org-acme --anchor 1042:3f0c9a7e5d1b2c4f6a8e0d9c7b5a3f1e2d4c6b8a0f9e7d5c3b1a2f4e6d8c0b9a',
  ],
};

/** One line of an export, as far as the chain needs it. Unknown fields are left out, missing ones refused. */
const exportLine = z.object({
  id: z.string().regex(/^\d+$/),
  at: z.string(),
  orgId: z.string(),
  actorId: z.string(),
  action: z.string(),
  outcome: z.string(),
  code: z.string().nullable(),
  message: z.string().nullable(),
  subject: z.string().nullable(),
  before: z.unknown(),
  after: z.unknown(),
  commandId: z.string().nullable(),
  chainSequence: z.number().int().nullable(),
  previousHash: z.string().nullable(),
  hash: z.string().nullable(),
});

async function* readExport(file: string, orgId: string | undefined): AsyncGenerator<ChainedAuditEntry> {
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let number = 0;
  for await (const line of lines) {
    number += 1;
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new LineError(`${file}:${number}: not JSON`);
    }
    const parsed = exportLine.safeParse(value);
    const missing = ['before', 'after'].filter((field) => !(value && typeof value === 'object' && field in value));
    if (!parsed.success || missing.length > 0) {
      const problem = missing.length > 0 ? `no ${missing.join(', ')}` : parsed.error!.issues.map((issue) => `${issue.path.join('.') || 'line'}: ${issue.message}`).join('; ');
      throw new LineError(`${file}:${number}: not an audit export line (${problem})`);
    }
    if (orgId === undefined || parsed.data.orgId === orgId) yield { ...parsed.data, before: parsed.data.before ?? null, after: parsed.data.after ?? null };
  }
}

/** A line of the file that is not an export line: the file cannot be verified (exit 1). */
class LineError extends Error {}

type Reported = AuditChainVerdict & { unsealed: number; oldestUnsealedAgeSeconds?: number | null };

const entries = (count: number) => `${count} ${count === 1 ? 'entry' : 'entries'}`;

function textOf(verdict: Reported): string {
  const waiting = verdict.unsealed > 0 ? `, ${entries(verdict.unsealed)} not sealed yet` : '';
  if (verdict.ok) {
    if (verdict.entries === 0) return `${verdict.orgId}: OK, no sealed entries${waiting}`;
    return `${verdict.orgId}: OK, ${entries(verdict.entries)} chained, last sequence ${verdict.lastSequence}, last hash ${verdict.lastHash}${waiting}`;
  }
  // The message names the entry (or, at the end of the chain, the missing places).
  return `${verdict.orgId}: BROKEN (${verdict.break.problem}): ${verdict.break.message}; ${entries(verdict.entries)} before it verified${waiting}`;
}

function report(verdicts: readonly Reported[], json: boolean): boolean {
  for (const verdict of verdicts) console.log(json ? JSON.stringify(verdict) : textOf(verdict));
  return verdicts.every((verdict) => verdict.ok);
}

async function verifyDatabase(orgId: string, anchor: AuditChainHead | undefined, json: boolean): Promise<boolean> {
  const verdict: StoredAuditChainVerdict = await withDatabase((db) => verifyStoredAuditChain(db, orgId, { anchor }));
  if (!verdict.found) {
    console.error(`no audit entries of org ${orgId} in the database`);
    return false;
  }
  const { found: _found, ...shown } = verdict;
  return report([shown], json);
}

async function verifyFile(file: string, orgId: string | undefined, options: AuditChainVerifierOptions, json: boolean): Promise<boolean> {
  const chains = new AuditChainCollector();
  try {
    for await (const entry of readExport(file, orgId)) chains.add(entry);
  } catch (error) {
    if (error instanceof LineError) {
      console.error(error.message);
      return false;
    }
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new UsageError(`no file ${file}`, helpText(spec));
    throw error;
  }
  const verdicts = chains.verify(options);
  const unsealed = chains.unsealed;
  const reported: Reported[] = verdicts.map((verdict) => ({ ...verdict, unsealed: unsealed.get(verdict.orgId) ?? 0 }));
  for (const [org, count] of unsealed) {
    if (!verdicts.some((verdict) => verdict.orgId === org)) reported.push({ orgId: org, ok: true, entries: 0, lastSequence: 0, lastHash: AUDIT_CHAIN_GENESIS, unsealed: count });
  }
  reported.sort((a, b) => (a.orgId < b.orgId ? -1 : a.orgId > b.orgId ? 1 : 0));
  if (reported.length === 0) {
    console.error(orgId === undefined ? `no audit entries in ${file}` : `no audit entries of org ${orgId} in ${file}`);
    return false;
  }
  return report(reported, json);
}

async function run(args: readonly string[]): Promise<boolean> {
  const parsed = parseArgs(spec, args);
  if (parsed.help) {
    console.log(helpText(spec));
    return true;
  }
  positionals(spec, parsed, []);
  const orgId = parsed.values.get('org');
  const file = parsed.values.get('file');
  const json = parsed.flags.has('json');
  const allowGaps = parsed.flags.has('allow-gaps');
  const anchor = anchorOf(parsed.values.get('anchor'));
  if (anchor && orgId === undefined) throw new UsageError('--anchor needs --org (an anchor is a place in one org\'s chain)', helpText(spec));
  if (file !== undefined) return verifyFile(file, orgId, { allowGaps, anchor }, json);
  if (allowGaps) throw new UsageError('--allow-gaps is for --file (a filtered export)', helpText(spec));
  if (orgId === undefined) throw new UsageError('audit verify needs --org ORG (or --file FILE)', helpText(spec));
  return verifyDatabase(orgId, anchor, json);
}

function anchorOf(text: string | undefined): AuditChainHead | undefined {
  if (text === undefined) return undefined;
  const match = /^(\d{1,15}):([0-9a-f]{64})$/.exec(text);
  if (!match || Number(match[1]) < 1) throw new UsageError(`--anchor must be SEQ:HASH (a chainSequence from 1 and a 64-digit lower-case hex hash), not ${JSON.stringify(text)}`, helpText(spec));
  return { sequence: Number(match[1]), hash: match[2]! };
}

export const auditVerifyCommand: CliCommand = { spec, run };
