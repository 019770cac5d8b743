import { createHash } from 'node:crypto';

/**
 * The audit trail's hash chain: each org's entries are numbered 1, 2, 3 ... (`chainSequence`), and each
 * holds the hash of the org's entry before it (`previousHash`) and its own `hash`, so an entry changed,
 * removed or put in another place after it was sealed breaks the chain from there on.
 *
 * hash = lower-case hex SHA-256 of the UTF-8 bytes of the canonical encoding of the entry: the JSON
 * Canonicalization Scheme (RFC 8785) serialization of an object with exactly the members of
 * AUDIT_CHAIN_FIELDS (the `audit export` line without its `hash`):
 *   id             string, the entry's id in decimal digits ("1234")
 *   orgId, actorId, action, outcome     strings
 *   code, message, subject, commandId   string or null
 *   before, after  the JSON value recorded, or null
 *   at             string, the entry's time in UTC with milliseconds: "2026-11-29T08:00:00.000Z"
 *   chainSequence  number, the entry's place in its org's chain (1 for the first)
 *   previousHash   string, the hash of the org's entry at chainSequence - 1 (AUDIT_CHAIN_GENESIS for the first)
 * RFC 8785: no whitespace, object members sorted by name (UTF-16 code units) at every depth, arrays in
 * their order, strings and numbers as ECMAScript's JSON.stringify writes them.
 *
 * Pure (Node's crypto only): the sealer (activities/audit-chain.ts), `audit verify` on the database and
 * on an export file share it, and an auditor can re-implement it from the text above.
 */

/** `previousHash` of an org's first entry. */
export const AUDIT_CHAIN_GENESIS = '0'.repeat(64);

/** What the hash covers, in the order the export writes them (the encoding sorts them). */
export const AUDIT_CHAIN_FIELDS = [
  'id',
  'at',
  'orgId',
  'actorId',
  'action',
  'outcome',
  'code',
  'message',
  'subject',
  'before',
  'after',
  'commandId',
  'chainSequence',
  'previousHash',
] as const;

/** An audit entry as the export writes it: its content and its place in the chain (null until sealed). */
export interface ChainedAuditEntry {
  id: string;
  at: string;
  orgId: string;
  actorId: string;
  action: string;
  outcome: string;
  code: string | null;
  message: string | null;
  subject: string | null;
  before: unknown;
  after: unknown;
  commandId: string | null;
  chainSequence: number | null;
  previousHash: string | null;
  hash: string | null;
}

/** An entry's content, without its place in the chain. */
export type AuditEntryContent = Omit<ChainedAuditEntry, 'chainSequence' | 'previousHash' | 'hash'>;

const HASH_PATTERN = /^[0-9a-f]{64}$/;

/**
 * RFC 8785 (JCS) for JSON values: members sorted by name as UTF-16 code units (JavaScript's default
 * sort), no whitespace, strings and numbers as JSON.stringify writes them. Anything that is not JSON
 * (undefined, a function, a bigint, NaN, Infinity, a Date) is refused rather than silently dropped.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`not a JSON number: ${value}`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null)) {
    const record = value as Record<string, unknown>;
    return `{${Object.keys(record)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`)
      .join(',')}}`;
  }
  throw new TypeError(`not a JSON value: ${typeof value}`);
}

/** The canonical encoding of an entry at a place in its chain (what its hash is computed over). */
export function canonicalAuditEntry(entry: AuditEntryContent & { chainSequence: number; previousHash: string }): string {
  const covered: Record<string, unknown> = {};
  for (const field of AUDIT_CHAIN_FIELDS) {
    const value = entry[field];
    if (value === undefined) throw new TypeError(`audit entry ${entry.id} has no ${field}`);
    covered[field] = value;
  }
  return canonicalJson(covered);
}

export function auditEntryHash(entry: AuditEntryContent & { chainSequence: number; previousHash: string }): string {
  return createHash('sha256').update(canonicalAuditEntry(entry), 'utf8').digest('hex');
}

/** An org's chain head: its last sealed entry's sequence and hash (0 and the genesis before the first). */
export interface AuditChainHead {
  sequence: number;
  hash: string;
}

export interface AuditSeal {
  id: string;
  chainSequence: number;
  previousHash: string;
  hash: string;
}

/** Chains entries (in the order given) after the head: their seals, and the new head. */
export function sealAuditEntries(head: AuditChainHead, entries: readonly AuditEntryContent[]): { seals: AuditSeal[]; head: AuditChainHead } {
  const seals: AuditSeal[] = [];
  let { sequence, hash } = head;
  for (const entry of entries) {
    const chainSequence = sequence + 1;
    const sealed = { ...entry, chainSequence, previousHash: hash };
    const entryHash = auditEntryHash(sealed);
    seals.push({ id: entry.id, chainSequence, previousHash: hash, hash: entryHash });
    sequence = chainSequence;
    hash = entryHash;
  }
  return { seals, head: { sequence, hash } };
}

/** What a verification found wrong first. */
export type AuditChainProblem =
  /** The chain fields are incomplete (some null) or not well formed. */
  | 'malformed'
  /** The entry's content (or its place) does not hash to its recorded hash: changed after sealing. */
  | 'hash-mismatch'
  /** The entry's previousHash is not the hash of the entry before it: that one was changed or replaced. */
  | 'previous-hash-mismatch'
  /** Sequences are missing before this entry, or at the end of the chain: entries were removed. */
  | 'missing-entry'
  /** Two entries claim the same place. */
  | 'duplicate-sequence'
  /** The org's recorded chain head does not match its last entry. */
  | 'head-mismatch'
  /** The chain no longer holds a place and hash noted earlier (outside the database): it was rewritten. */
  | 'anchor-mismatch';

export interface AuditChainBreak {
  problem: AuditChainProblem;
  /** The first entry that breaks the chain (null when the break is at the end: removed last entries, the head). */
  entryId: string | null;
  /** That entry's chainSequence, or for a break at the end the first missing one. */
  chainSequence: number | null;
  /** The missing places, for `missing-entry`. */
  missing?: { from: number; to: number };
  message: string;
}

/** A sealed entry as the verifier follows it: its recorded place and hashes, and the hash of its content. */
export interface AuditChainLink {
  id: string;
  orgId: string;
  chainSequence: number;
  previousHash: string;
  hash: string;
  /** The hash recomputed from the entry's content, recorded sequence and previousHash. */
  contentHash: string;
}

/** An entry as a link of its chain; 'unsealed' when it has no chain fields yet; a break when they are malformed. */
export function auditChainLinkOf(entry: ChainedAuditEntry): AuditChainLink | 'unsealed' | AuditChainBreak {
  const { chainSequence, previousHash, hash } = entry;
  if (chainSequence === null && previousHash === null && hash === null) return 'unsealed';
  if (chainSequence === null || previousHash === null || hash === null || !Number.isSafeInteger(chainSequence) || chainSequence < 1 || !HASH_PATTERN.test(previousHash) || !HASH_PATTERN.test(hash)) {
    return {
      problem: 'malformed',
      entryId: entry.id,
      chainSequence: Number.isSafeInteger(chainSequence) ? chainSequence : null,
      message: `entry ${entry.id}: its chain fields are incomplete or malformed (chainSequence ${String(chainSequence)}, previousHash ${String(previousHash)}, hash ${String(hash)})`,
    };
  }
  return { id: entry.id, orgId: entry.orgId, chainSequence, previousHash, hash, contentHash: auditEntryHash({ ...entry, chainSequence, previousHash }) };
}

export type AuditChainVerdict =
  | { orgId: string; ok: true; entries: number; lastSequence: number; lastHash: string }
  | { orgId: string; ok: false; entries: number; break: AuditChainBreak };

const describeRange = (from: number, to: number) => (from === to ? `sequence ${from} is` : `sequences ${from} to ${to} are`);

export interface AuditChainVerifierOptions {
  /**
   * For a filtered export (a time range, an actor): places missing between two entries are skipped,
   * and only links between consecutive places are checked.
   */
  allowGaps?: boolean;
  /**
   * A place and hash noted earlier outside the database (the last hash of an earlier verification or
   * export): the chain must still hold it. Whoever can write the database can recompute a whole chain
   * after changing an entry: only such an anchor shows it.
   */
  anchor?: AuditChainHead;
}

/** Follows one org's chain, link by link in chainSequence order, and keeps the first break. */
export class AuditChainVerifier {
  private count = 0;
  private last: { id: string; sequence: number; hash: string } | null = null;
  private broken: AuditChainBreak | null = null;

  private anchorSeen = false;

  constructor(
    readonly orgId: string,
    private readonly options: AuditChainVerifierOptions = {},
  ) {}

  /** The first break so far. */
  get firstBreak(): AuditChainBreak | null {
    return this.broken;
  }

  /** Records a break found outside the links (a malformed entry): the first one counts. */
  fail(found: AuditChainBreak): AuditChainBreak {
    this.broken ??= found;
    return this.broken;
  }

  /** The next link in chainSequence order. Returns the first break (this one or an earlier one), or null. */
  add(link: AuditChainLink): AuditChainBreak | null {
    if (this.broken) return this.broken;
    const last = this.last;
    const expected = last ? last.sequence + 1 : 1;
    const at = `entry ${link.id} (sequence ${link.chainSequence})`;
    const before = last ? `entry ${last.id} (sequence ${last.sequence})` : 'the start of the chain';
    if (link.chainSequence < expected) {
      return this.fail({ problem: 'duplicate-sequence', entryId: link.id, chainSequence: link.chainSequence, message: `${at}: its place is taken by ${before} as well` });
    }
    const gap = link.chainSequence > expected;
    if (gap && !(this.options.allowGaps ?? false)) {
      return this.fail({
        problem: 'missing-entry',
        entryId: link.id,
        chainSequence: link.chainSequence,
        missing: { from: expected, to: link.chainSequence - 1 },
        message: `${at}: ${describeRange(expected, link.chainSequence - 1)} missing between ${before} and it (removed)`,
      });
    }
    if (link.contentHash !== link.hash) {
      return this.fail({ problem: 'hash-mismatch', entryId: link.id, chainSequence: link.chainSequence, message: `${at}: its content does not match its hash (changed after it was sealed)` });
    }
    if (!gap) {
      const previous = last ? last.hash : AUDIT_CHAIN_GENESIS;
      if (link.previousHash !== previous) {
        const whose = last ? `the hash of ${before}: one of the two was changed or replaced` : 'the start of the chain (64 zeros)';
        return this.fail({ problem: 'previous-hash-mismatch', entryId: link.id, chainSequence: link.chainSequence, message: `${at}: its previousHash is not ${whose}` });
      }
    }
    const anchor = this.options.anchor;
    if (anchor && link.chainSequence === anchor.sequence) {
      this.anchorSeen = true;
      if (link.hash !== anchor.hash) {
        return this.fail({
          problem: 'anchor-mismatch',
          entryId: link.id,
          chainSequence: link.chainSequence,
          message: `${at}: its hash is ${link.hash}, not ${anchor.hash} as noted earlier: the chain was rewritten up to here`,
        });
      }
    }
    this.count += 1;
    this.last = { id: link.id, sequence: link.chainSequence, hash: link.hash };
    return null;
  }

  /**
   * After the last link. `head` is the org's recorded chain head (the database has one, an export does
   * not): it must name the last entry, else the last entries were removed or the head changed.
   */
  finish(head?: AuditChainHead | null): AuditChainVerdict {
    const { orgId, count: entries } = this;
    if (!this.broken && head !== undefined) {
      const lastSequence = this.last?.sequence ?? 0;
      const lastHash = this.last?.hash ?? AUDIT_CHAIN_GENESIS;
      const recorded = head ?? { sequence: 0, hash: AUDIT_CHAIN_GENESIS };
      if (recorded.sequence > lastSequence) {
        this.fail({
          problem: 'missing-entry',
          entryId: null,
          chainSequence: lastSequence + 1,
          missing: { from: lastSequence + 1, to: recorded.sequence },
          message: `${describeRange(lastSequence + 1, recorded.sequence)} missing at the end of the chain (removed): its head records ${recorded.sequence} entries`,
        });
      } else if (recorded.sequence !== lastSequence || recorded.hash !== lastHash) {
        this.fail({
          problem: 'head-mismatch',
          entryId: this.last?.id ?? null,
          chainSequence: this.last?.sequence ?? null,
          message: `the chain head records sequence ${recorded.sequence} and hash ${recorded.hash}, but the last entry is ${this.last ? `entry ${this.last.id} (sequence ${lastSequence}, hash ${lastHash})` : 'none'}`,
        });
      }
    }
    const anchor = this.options.anchor;
    if (!this.broken && anchor && !this.anchorSeen) {
      this.fail({
        problem: 'anchor-mismatch',
        entryId: null,
        chainSequence: anchor.sequence,
        message: `the chain holds no entry at sequence ${anchor.sequence}, noted earlier with hash ${anchor.hash}`,
      });
    }
    if (this.broken) return { orgId, ok: false, entries, break: this.broken };
    return { orgId, ok: true, entries, lastSequence: this.last?.sequence ?? 0, lastHash: this.last?.hash ?? AUDIT_CHAIN_GENESIS };
  }
}

/**
 * The chains of entries given in any order (an export file): `add` keeps one small link per entry (its
 * content is hashed at once), `verify` follows each org's links in chainSequence order. Entries not
 * sealed yet are counted, not verified.
 */
export class AuditChainCollector {
  private readonly links = new Map<string, AuditChainLink[]>();
  private readonly malformed = new Map<string, AuditChainBreak>();
  readonly unsealed = new Map<string, number>();

  add(entry: ChainedAuditEntry): void {
    const link = auditChainLinkOf(entry);
    if (link === 'unsealed') {
      this.unsealed.set(entry.orgId, (this.unsealed.get(entry.orgId) ?? 0) + 1);
      return;
    }
    const chain = this.links.get(entry.orgId) ?? [];
    this.links.set(entry.orgId, chain);
    if ('problem' in link) {
      if (!this.malformed.has(entry.orgId)) this.malformed.set(entry.orgId, link);
    } else chain.push(link);
  }

  /** A verdict for each org with sealed entries, by org id. */
  verify(options: AuditChainVerifierOptions = {}): AuditChainVerdict[] {
    return [...this.links.keys()].sort().map((orgId) => {
      const verifier = new AuditChainVerifier(orgId, options);
      const found = this.malformed.get(orgId);
      if (found) verifier.fail(found);
      for (const link of this.links.get(orgId)!.sort((a, b) => a.chainSequence - b.chainSequence)) if (verifier.add(link)) break;
      return verifier.finish();
    });
  }
}

/** `AuditChainCollector` over entries in memory. */
export function verifyAuditChains(entries: Iterable<ChainedAuditEntry>, options: AuditChainVerifierOptions = {}): { verdicts: AuditChainVerdict[]; unsealed: Map<string, number> } {
  const collector = new AuditChainCollector();
  for (const entry of entries) collector.add(entry);
  return { verdicts: collector.verify(options), unsealed: collector.unsealed };
}
