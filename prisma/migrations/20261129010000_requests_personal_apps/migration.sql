-- CreateEnum
CREATE TYPE "AppRequestStatus" AS ENUM ('PENDING', 'APPROVED', 'DENIED', 'EXPIRED', 'CANCELLED', 'DELETED');

-- CreateEnum
CREATE TYPE "PersonalAppStatus" AS ENUM ('ACTIVE', 'MOVED');

-- CreateEnum
CREATE TYPE "TechnicalContactMessageStatus" AS ENUM ('QUEUED', 'SENT', 'FAILED');

-- CreateTable
CREATE TABLE "AppRequest" (
    "id" TEXT NOT NULL,
    "orgId" TEXT NOT NULL,
    "appId" TEXT NOT NULL,
    "requesterId" TEXT NOT NULL,
    "comment" TEXT,
    "status" "AppRequestStatus" NOT NULL,
    "currentStep" INTEGER,
    "currentApproverIds" TEXT[],
    "commandId" TEXT NOT NULL,
    "workflowId" TEXT NOT NULL,
    "closedReason" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "closedAt" TIMESTAMP(3),

    CONSTRAINT "AppRequest_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AppRequestEvent" (
    "id" TEXT NOT NULL,
    "requestId" TEXT NOT NULL,
    "sequence" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "actorId" TEXT,
    "step" INTEGER,
    "comment" TEXT,
    "data" JSONB NOT NULL DEFAULT '{}',
    "at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "AppRequestEvent_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AppAssignment" (
    "id" BIGSERIAL NOT NULL,
    "orgId" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "appId" TEXT NOT NULL,
    "requestId" TEXT,
    "assignedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "AppAssignment_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "EmailDelivery" (
    "dedupeKey" TEXT NOT NULL,
    "recipient" TEXT NOT NULL,
    "subject" TEXT NOT NULL,
    "smtpMessageId" TEXT,
    "sentAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "EmailDelivery_pkey" PRIMARY KEY ("dedupeKey")
);

-- CreateTable
CREATE TABLE "PersonalApp" (
    "id" TEXT NOT NULL,
    "orgId" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "catalogAppId" TEXT NOT NULL,
    "username" TEXT,
    "credentialsSet" BOOLEAN NOT NULL DEFAULT false,
    "onDashboard" BOOLEAN NOT NULL DEFAULT true,
    "status" "PersonalAppStatus" NOT NULL DEFAULT 'ACTIVE',
    "commandId" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "movedAt" TIMESTAMP(3),

    CONSTRAINT "PersonalApp_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "TechnicalContactMessage" (
    "id" TEXT NOT NULL,
    "orgId" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "contactUserId" TEXT NOT NULL,
    "contactEmail" TEXT NOT NULL,
    "status" "TechnicalContactMessageStatus" NOT NULL,
    "smtpMessageId" TEXT,
    "error" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "sentAt" TIMESTAMP(3),

    CONSTRAINT "TechnicalContactMessage_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "AppRequest_commandId_key" ON "AppRequest"("commandId");

-- CreateIndex
CREATE UNIQUE INDEX "AppRequest_workflowId_key" ON "AppRequest"("workflowId");

-- CreateIndex
CREATE INDEX "AppRequest_orgId_status_idx" ON "AppRequest"("orgId", "status");

-- CreateIndex
CREATE INDEX "AppRequest_requesterId_appId_status_idx" ON "AppRequest"("requesterId", "appId", "status");

-- CreateIndex
CREATE UNIQUE INDEX "AppRequestEvent_requestId_sequence_key" ON "AppRequestEvent"("requestId", "sequence");

-- CreateIndex
CREATE INDEX "AppAssignment_orgId_idx" ON "AppAssignment"("orgId");

-- CreateIndex
CREATE UNIQUE INDEX "AppAssignment_userId_appId_key" ON "AppAssignment"("userId", "appId");

-- CreateIndex
CREATE UNIQUE INDEX "PersonalApp_commandId_key" ON "PersonalApp"("commandId");

-- CreateIndex
CREATE INDEX "PersonalApp_orgId_idx" ON "PersonalApp"("orgId");

-- CreateIndex
CREATE UNIQUE INDEX "PersonalApp_userId_catalogAppId_key" ON "PersonalApp"("userId", "catalogAppId");

-- CreateIndex
CREATE INDEX "TechnicalContactMessage_userId_createdAt_idx" ON "TechnicalContactMessage"("userId", "createdAt");

-- AddForeignKey
ALTER TABLE "AppRequestEvent" ADD CONSTRAINT "AppRequestEvent_requestId_fkey" FOREIGN KEY ("requestId") REFERENCES "AppRequest"("id") ON DELETE RESTRICT ON UPDATE CASCADE;


-- At most one pending request per user and app (DUPLICATE_PENDING_REQUEST). Prisma cannot express a
-- partial unique index, so it lives here.
CREATE UNIQUE INDEX "AppRequest_one_pending_per_user_and_app" ON "AppRequest"("requesterId", "appId") WHERE "status" = 'PENDING';
