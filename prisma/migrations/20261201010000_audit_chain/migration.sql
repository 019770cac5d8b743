-- The audit trail's hash chain (issue 12 point 6). Writers insert AuditEntry rows as before, with the
-- three chain columns null. The audit sealer (workers/audit-sealer.ts, in the outbox relay process)
-- then chains each org's new entries shortly after they commit: "chainSequence" 1, 2, 3 ... per org,
-- "previousHash" the hash of the org's entry before it (64 zeros for the first) and "hash" the SHA-256
-- of the entry's canonical encoding (rules/audit-chain.ts). "AuditChainHead" holds each org's last
-- sequence and hash. `npm run cli -- audit verify` recomputes the chain.
-- (No semicolon in comments: the migration engine splits on every one.)

ALTER TABLE "AuditEntry" ADD COLUMN "chainSequence" BIGINT,
  ADD COLUMN "previousHash" TEXT,
  ADD COLUMN "hash" TEXT;

-- The three are set together, once, and hashes are lower-case hex SHA-256.
ALTER TABLE "AuditEntry" ADD CONSTRAINT "AuditEntry_chain_check" CHECK (
  (("chainSequence" IS NULL) = ("hash" IS NULL)) AND (("hash" IS NULL) = ("previousHash" IS NULL))
  AND ("chainSequence" IS NULL OR "chainSequence" >= 1)
  AND ("hash" IS NULL OR "hash" ~ '^[0-9a-f]{64}$')
  AND ("previousHash" IS NULL OR "previousHash" ~ '^[0-9a-f]{64}$')
) NOT VALID;
ALTER TABLE "AuditEntry" VALIDATE CONSTRAINT "AuditEntry_chain_check";

-- One entry per place in an org's chain: two sealers can never double a sequence, whatever happens.
CREATE UNIQUE INDEX "AuditEntry_orgId_chainSequence_key" ON "AuditEntry"("orgId", "chainSequence");

-- What the sealer scans: the entries not chained yet, by org, oldest first. Sealed rows leave the index.
CREATE INDEX "AuditEntry_unsealed_idx" ON "AuditEntry"("orgId", "id") WHERE "hash" IS NULL;

-- Each org's chain head: the sequence and hash of its last sealed entry (0 and 64 zeros before the
-- first). A sealer locks the row while it extends the chain.
CREATE TABLE "AuditChainHead" (
    "orgId" TEXT NOT NULL,
    "sequence" BIGINT NOT NULL,
    "hash" TEXT NOT NULL,
    "sealedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "AuditChainHead_pkey" PRIMARY KEY ("orgId")
);

-- The append-only rule now lets exactly one UPDATE through: setting the chain columns of an entry that
-- has none yet, with its content unchanged. Any other UPDATE still fails (for the owner too, until
-- the owner drops or disables the rule, which the chain then shows). A column added to AuditEntry
-- later must be added to both lists below. CREATE OR REPLACE keeps the rule in force throughout.
CREATE OR REPLACE RULE "AuditEntry_no_update" AS ON UPDATE TO "AuditEntry"
  WHERE OLD."chainSequence" IS NOT NULL OR OLD."previousHash" IS NOT NULL OR OLD."hash" IS NOT NULL
     OR (NEW."id", NEW."orgId", NEW."actorId", NEW."action", NEW."outcome", NEW."code", NEW."message", NEW."subject", NEW."before", NEW."after", NEW."commandId", NEW."at")
        IS DISTINCT FROM (OLD."id", OLD."orgId", OLD."actorId", OLD."action", OLD."outcome", OLD."code", OLD."message", OLD."subject", OLD."before", OLD."after", OLD."commandId", OLD."at")
  DO INSTEAD SELECT ('the audit trail is append-only, AuditEntry rows cannot be updated: id ' || OLD."id")::integer;

-- The application role (which runs the sealer) may update the three chain columns and nothing else
-- of the audit trail: the content stays immutable for it (permission denied). It reads and writes the
-- chain heads (the default privileges of the application_role migration, kept explicit here).
GRANT UPDATE ("chainSequence", "previousHash", "hash") ON "AuditEntry" TO selfservice_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON "AuditChainHead" TO selfservice_app;
