-- App admins scoped to listed apps (issue 9). Empty means every app of the org, as before.
ALTER TABLE "User" ADD COLUMN "adminAppIds" TEXT[] DEFAULT ARRAY[]::TEXT[];
