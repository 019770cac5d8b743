-- Per-approver app user attributes: declared per app, set by approvers, carried by the grant
ALTER TABLE "AppSelfServiceConfig" ADD COLUMN "appUserAttributes" JSONB NOT NULL DEFAULT '[]';
ALTER TABLE "AppAssignment" ADD COLUMN "attributes" JSONB;
