import {
  AUDIT_CHAIN_GENESIS,
  auditChainLinkOf,
  AuditChainVerifier,
  auditEntryHash,
  canonicalAuditEntry,
  canonicalJson,
  sealAuditEntries,
  verifyAuditChains,
  type AuditChainLink,
  type AuditEntryContent,
  type ChainedAuditEntry,
} from '../../rules/audit-chain';

/**
 * The audit chain's canonical encoding and its verifier, pure: the vectors below were computed outside
 * this code (Python's json.dumps with sorted keys and no whitespace, then hashlib.sha256), as an
 * auditor would, so a change of the encoding fails here before it breaks every stored chain.
 */
describe('audit chain', () => {
  const first: AuditEntryContent = {
    id: '42',
    at: '2026-11-29T08:00:00.000Z',
    orgId: 'org-acme',
    actorId: 'u-admin',
    action: 'settings.update',
    outcome: 'ACCEPTED',
    code: null,
    message: 'line\nbreak "quoted"',
    subject: null,
    before: { b: 1, a: [true, null, 'é'] },
    after: { a: 1.5, z: { y: [], x: {} } },
    commandId: 'cmd-1',
  };
  const second: AuditEntryContent = { ...first, id: '43', message: null, before: null, after: null };
  const FIRST_HASH = '59851937863c791865cc6371864b47cdf3080750336bfdbf19c66747b3964f31';
  const SECOND_HASH = 'eacb46d8753f5a4986f18ba65ea79eca11ae173d45baad1277e1c816da8e1ef7';

  describe('canonical encoding', () => {
    test('is RFC 8785: members sorted at every depth, no whitespace, JSON.stringify strings and numbers', () => {
      expect(canonicalJson({ b: [3, { d: 1, c: 'x' }], a: null, '': true })).toBe('{"":true,"a":null,"b":[3,{"c":"x","d":1}]}');
      expect(canonicalJson([1.5, -0, 1e21, 0.1 + 0.2, 100])).toBe('[1.5,0,1e+21,0.30000000000000004,100]');
      expect(canonicalJson('tab\there "q" \\ \u0001 \u2028 é 😀')).toBe('"tab\\there \\"q\\" \\\\ \\u0001 \u2028 é 😀"');
      // Names compare as UTF-16 code units: U+1F600 (the pair 0xD83D 0xDE00) sorts before U+FB01, unlike by code points.
      expect(canonicalJson({ '😀': 1, 'ﬁ': 2, Z: 3, a: 4 })).toBe('{"Z":3,"a":4,"😀":1,"ﬁ":2}');
    });

    test('refuses what is not JSON instead of dropping it', () => {
      for (const value of [undefined, NaN, Infinity, 1n, new Date(0), () => 1, { a: undefined }]) expect(() => canonicalJson(value)).toThrow(TypeError);
    });

    test('of an entry: exactly the fields of an export line but its hash, whatever else the record holds', () => {
      const encoded = canonicalAuditEntry({ ...first, chainSequence: 1, previousHash: AUDIT_CHAIN_GENESIS, ...({ hash: 'ignored', extra: 1 } as object) });
      expect(encoded).toBe(
        '{"action":"settings.update","actorId":"u-admin","after":{"a":1.5,"z":{"x":{},"y":[]}},"at":"2026-11-29T08:00:00.000Z",' +
          '"before":{"a":[true,null,"é"],"b":1},"chainSequence":1,"code":null,"commandId":"cmd-1","id":"42",' +
          '"message":"line\\nbreak \\"quoted\\"","orgId":"org-acme","outcome":"ACCEPTED",' +
          `"previousHash":"${'0'.repeat(64)}","subject":null}`,
      );
      expect(auditEntryHash({ ...first, chainSequence: 1, previousHash: AUDIT_CHAIN_GENESIS })).toBe(FIRST_HASH);
      expect(() => canonicalAuditEntry({ ...first, before: undefined, chainSequence: 1, previousHash: AUDIT_CHAIN_GENESIS })).toThrow('audit entry 42 has no before');
    });

    test('sealing chains entries after the head: places follow, each holds the hash of the one before', () => {
      const { seals, head } = sealAuditEntries({ sequence: 0, hash: AUDIT_CHAIN_GENESIS }, [first, second]);
      expect(seals).toEqual([
        { id: '42', chainSequence: 1, previousHash: AUDIT_CHAIN_GENESIS, hash: FIRST_HASH },
        { id: '43', chainSequence: 2, previousHash: FIRST_HASH, hash: SECOND_HASH },
      ]);
      expect(head).toEqual({ sequence: 2, hash: SECOND_HASH });
      // Sealing in two batches gives the same chain.
      const later = sealAuditEntries({ sequence: 1, hash: FIRST_HASH }, [second]);
      expect(later.seals).toEqual([seals[1]]);
    });
  });

  describe('verifier', () => {
    /** An org's chain of n entries, sealed. */
    function chain(n: number, orgId = 'org-acme'): ChainedAuditEntry[] {
      const contents = Array.from({ length: n }, (_, index): AuditEntryContent => ({ ...first, orgId, id: String(100 + index), message: `entry ${index + 1}` }));
      const { seals } = sealAuditEntries({ sequence: 0, hash: AUDIT_CHAIN_GENESIS }, contents);
      return contents.map((content, index) => ({ ...content, ...seals[index]! }));
    }
    const linksOf = (entries: ChainedAuditEntry[]) => entries.map((entry) => auditChainLinkOf(entry) as AuditChainLink);
    function verify(entries: ChainedAuditEntry[], head?: { sequence: number; hash: string } | null, allowGaps = false) {
      const verifier = new AuditChainVerifier('org-acme', { allowGaps });
      for (const link of linksOf(entries)) if (verifier.add(link)) break;
      return verifier.finish(head);
    }

    test('an intact chain is OK, with its length and last hash, against its head too', () => {
      const entries = chain(5);
      const last = entries[4]!;
      expect(verify(entries)).toEqual({ orgId: 'org-acme', ok: true, entries: 5, lastSequence: 5, lastHash: last.hash });
      expect(verify(entries, { sequence: 5, hash: last.hash! })).toMatchObject({ ok: true, entries: 5 });
      expect(verify([], null)).toEqual({ orgId: 'org-acme', ok: true, entries: 0, lastSequence: 0, lastHash: AUDIT_CHAIN_GENESIS });
    });

    test('an entry whose content changed is named: hash mismatch', () => {
      const entries = chain(5);
      entries[2] = { ...entries[2]!, message: 'tampered' };
      expect(verify(entries)).toMatchObject({ ok: false, entries: 2, break: { problem: 'hash-mismatch', entryId: '102', chainSequence: 3 } });
      // A change deep in a JSON value too.
      const deep = chain(5);
      deep[1] = { ...deep[1]!, before: { a: [true, null, 'é'], b: 2 } };
      expect(verify(deep)).toMatchObject({ ok: false, break: { problem: 'hash-mismatch', entryId: '101' } });
    });

    test('an entry changed with its hash recomputed is caught at the next one: previous-hash mismatch', () => {
      const entries = chain(5);
      const changed = { ...entries[2]!, message: 'tampered' };
      entries[2] = { ...changed, hash: auditEntryHash({ ...changed, chainSequence: 3, previousHash: changed.previousHash! }) };
      const verdict = verify(entries);
      expect(verdict).toMatchObject({ ok: false, entries: 3, break: { problem: 'previous-hash-mismatch', entryId: '103', chainSequence: 4 } });
      expect(verdict.ok ? '' : verdict.break.message).toBe('entry 103 (sequence 4): its previousHash is not the hash of entry 102 (sequence 3): one of the two was changed or replaced');
      // The whole chain recomputed from there is caught only by the head (or an export held elsewhere).
      const first1 = chain(1);
      const replaced = { ...first1[0]!, previousHash: 'f'.repeat(64) };
      expect(verify([{ ...replaced, hash: auditEntryHash({ ...replaced, chainSequence: 1, previousHash: replaced.previousHash }) }])).toMatchObject({
        ok: false,
        break: { problem: 'previous-hash-mismatch', entryId: '100', message: 'entry 100 (sequence 1): its previousHash is not the start of the chain (64 zeros)' },
      });
    });

    test('a removed entry is named by the place missing, at the entry after it; removed last entries by the head', () => {
      const entries = chain(5);
      const verdict = verify([...entries.slice(0, 2), ...entries.slice(3)]);
      expect(verdict).toMatchObject({ ok: false, entries: 2, break: { problem: 'missing-entry', entryId: '103', chainSequence: 4, missing: { from: 3, to: 3 } } });
      expect(verdict.ok ? '' : verdict.break.message).toBe('entry 103 (sequence 4): sequence 3 is missing between entry 101 (sequence 2) and it (removed)');
      expect(verify(entries.slice(1))).toMatchObject({ ok: false, break: { problem: 'missing-entry', entryId: '101', missing: { from: 1, to: 1 } } });
      const head = { sequence: 5, hash: entries[4]!.hash! };
      expect(verify(entries.slice(0, 3), head)).toMatchObject({ ok: false, entries: 3, break: { problem: 'missing-entry', entryId: null, chainSequence: 4, missing: { from: 4, to: 5 } } });
      expect(verify(entries, { sequence: 5, hash: 'a'.repeat(64) })).toMatchObject({ ok: false, break: { problem: 'head-mismatch', entryId: '104' } });
      expect(verify(entries, null)).toMatchObject({ ok: false, break: { problem: 'head-mismatch' } });
    });

    test('a doubled place is named; malformed chain fields are named; unsealed entries are not links', () => {
      const entries = chain(3);
      expect(verify([entries[0]!, entries[1]!, entries[1]!, entries[2]!])).toMatchObject({ ok: false, break: { problem: 'duplicate-sequence', entryId: '101', chainSequence: 2 } });
      expect(auditChainLinkOf({ ...entries[0]!, hash: null })).toMatchObject({ problem: 'malformed', entryId: '100' });
      expect(auditChainLinkOf({ ...entries[0]!, hash: 'ABC' })).toMatchObject({ problem: 'malformed' });
      expect(auditChainLinkOf({ ...entries[0]!, chainSequence: 0 })).toMatchObject({ problem: 'malformed', chainSequence: 0 });
      expect(auditChainLinkOf({ ...entries[0]!, chainSequence: null, previousHash: null, hash: null })).toBe('unsealed');
    });

    test('a filtered export verifies with allowGaps: each entry, and the links between consecutive ones', () => {
      const entries = chain(6);
      const filtered = [entries[1]!, entries[2]!, entries[4]!];
      expect(verify(filtered)).toMatchObject({ ok: false, break: { problem: 'missing-entry' } });
      expect(verify(filtered, undefined, true)).toEqual({ orgId: 'org-acme', ok: true, entries: 3, lastSequence: 5, lastHash: entries[4]!.hash });
      expect(verify([entries[1]!, { ...entries[2]!, actorId: 'someone else' }, entries[4]!], undefined, true)).toMatchObject({ ok: false, break: { problem: 'hash-mismatch', entryId: '102' } });
    });

    test('an anchor noted earlier catches a chain recomputed after an edit, which otherwise verifies', () => {
      const entries = chain(5);
      const anchor = { sequence: 4, hash: entries[3]!.hash! };
      const check = (candidate: ChainedAuditEntry[], noted = anchor) => {
        const verifier = new AuditChainVerifier('org-acme', { anchor: noted });
        for (const link of linksOf(candidate)) if (verifier.add(link)) break;
        return verifier.finish();
      };
      expect(check(entries)).toMatchObject({ ok: true, entries: 5 });
      // The owner edits entry 2 and reseals everything from there on.
      const contents = entries.map(({ chainSequence: _s, previousHash: _p, hash: _h, ...content }) => content);
      contents[1] = { ...contents[1]!, message: 'rewritten' };
      const { seals } = sealAuditEntries({ sequence: 1, hash: entries[0]!.hash! }, contents.slice(1));
      const rewritten = [entries[0]!, ...contents.slice(1).map((content, index) => ({ ...content, ...seals[index]! }))];
      expect(verify(rewritten)).toMatchObject({ ok: true, entries: 5 });
      expect(check(rewritten)).toMatchObject({ ok: false, entries: 3, break: { problem: 'anchor-mismatch', entryId: '103', chainSequence: 4 } });
      expect(check(entries.slice(0, 3))).toMatchObject({ ok: false, break: { problem: 'anchor-mismatch', entryId: null, chainSequence: 4 } });
    });

    test('entries in any order and of several orgs (an export file) are sorted into their chains', () => {
      const acme = chain(4);
      const other = chain(3, 'org-other');
      const unsealed = { ...first, id: '999', chainSequence: null, previousHash: null, hash: null };
      const { verdicts, unsealed: waiting } = verifyAuditChains([acme[2]!, other[1]!, acme[0]!, unsealed, acme[3]!, other[2]!, other[0]!, acme[1]!]);
      expect(verdicts).toEqual([
        { orgId: 'org-acme', ok: true, entries: 4, lastSequence: 4, lastHash: acme[3]!.hash },
        { orgId: 'org-other', ok: true, entries: 3, lastSequence: 3, lastHash: other[2]!.hash },
      ]);
      expect(waiting).toEqual(new Map([['org-acme', 1]]));
      // An entry moved to another org's chain: its org is hashed.
      const tampered = verifyAuditChains([...acme.slice(0, 3), { ...acme[3]!, orgId: 'org-other' }, ...other]);
      expect(tampered.verdicts.find((verdict) => verdict.orgId === 'org-other')).toMatchObject({ ok: false, break: { problem: 'hash-mismatch', entryId: '103' } });
    });
  });
});
