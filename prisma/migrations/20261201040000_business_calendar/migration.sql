-- The org's business calendar, for approver steps whose timeouts count business days
ALTER TABLE "OrgSettings" ADD COLUMN "businessCalendar" JSONB;
