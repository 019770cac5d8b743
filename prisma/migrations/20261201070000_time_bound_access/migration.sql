-- Time-bound access: the per-app maximum, and when a request's grant ends
ALTER TABLE "AppSelfServiceConfig" ADD COLUMN "timeBoundAccess" JSONB;
ALTER TABLE "AppRequest" ADD COLUMN "accessEndsAt" TIMESTAMP(3);
