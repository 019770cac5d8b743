-- Issue 12 point 8: personal bookmarks, catalog app domains, personal app usage per catalog app.
-- The application role gets its rights on the new table through the default privileges of
-- 20261129040000_application_role (no append-only rule: bookmarks are ordinary state).
-- (No semicolon in comments: the migration engine splits on every one.)

-- The sites a catalog app runs on, matched against a bookmark's host (GIN: domains && the host's suffixes).
ALTER TABLE "CatalogApp" ADD COLUMN "domains" TEXT[] DEFAULT ARRAY[]::TEXT[];
CREATE INDEX "CatalogApp_domains_idx" ON "CatalogApp" USING GIN ("domains");

-- A link on a user's own dashboard: the normalized https URL, once per user.
CREATE TABLE "PersonalBookmark" (
    "id" TEXT NOT NULL,
    "orgId" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "url" TEXT NOT NULL,
    "host" TEXT NOT NULL,
    "commandId" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "PersonalBookmark_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "PersonalBookmark_commandId_key" ON "PersonalBookmark"("commandId");
CREATE INDEX "PersonalBookmark_orgId_idx" ON "PersonalBookmark"("orgId");
CREATE UNIQUE INDEX "PersonalBookmark_userId_url_key" ON "PersonalBookmark"("userId", "url");

-- Usage per catalog app (apps usage): personal apps grouped by catalog app, per org or across orgs.
CREATE INDEX "PersonalApp_catalogAppId_orgId_status_idx" ON "PersonalApp"("catalogAppId", "orgId", "status");
