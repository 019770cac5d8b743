-- Issue 12 points 4 and 9: justification and deny comments per app, requests on behalf of a report.
-- The application role gets its rights on the new columns through the tables' existing grants.
-- (No semicolon in comments: the migration engine splits on every one.)

-- The directory's manager attribute: a plain reference, like GroupMember.userId (the manager may not be synced yet).
ALTER TABLE "User" ADD COLUMN "managerId" TEXT;

-- Per-app: requesters must justify, approvers must comment to deny. Off for every existing app.
ALTER TABLE "AppSelfServiceConfig" ADD COLUMN "justificationRequired" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN "denyCommentRequired" BOOLEAN NOT NULL DEFAULT false;

-- Who asked, when a manager requested the app for their report (the requester of record).
ALTER TABLE "AppRequest" ADD COLUMN "requestedById" TEXT;
