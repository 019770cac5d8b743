-- Issue 12 point 2: delegation while away. One row per delegation a user set, kept when cancelled.
-- The application role gets its rights on the new table through the default privileges of
-- 20261129040000_application_role (not append-only: a cancellation sets cancelledAt).
-- (No semicolon in comments: the migration engine splits on every one.)

-- CreateTable
CREATE TABLE "Delegation" (
    "id" TEXT NOT NULL,
    "orgId" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "delegateId" TEXT NOT NULL,
    "startsAt" TIMESTAMP(3) NOT NULL,
    "endsAt" TIMESTAMP(3) NOT NULL,
    "reason" TEXT,
    "commandId" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "cancelledAt" TIMESTAMP(3),

    CONSTRAINT "Delegation_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Delegation_commandId_key" ON "Delegation"("commandId");

-- CreateIndex
CREATE INDEX "Delegation_orgId_endsAt_idx" ON "Delegation"("orgId", "endsAt");

-- CreateIndex
CREATE INDEX "Delegation_userId_endsAt_idx" ON "Delegation"("userId", "endsAt");
