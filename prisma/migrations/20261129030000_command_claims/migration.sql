-- Command ids claimed by source and content fingerprint (issue 8: idempotency by source + id)
CREATE TABLE "CommandClaim" (
    "commandId" TEXT NOT NULL,
    "source" TEXT NOT NULL,
    "fingerprint" TEXT NOT NULL,
    "claimedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "CommandClaim_pkey" PRIMARY KEY ("commandId")
);
