-- Order-independent directory sync (issue 8, point 6).
-- An org created as a placeholder by a user, group or org app that arrived before the org itself.
-- AlterTable
ALTER TABLE "Org" ADD COLUMN     "provisional" BOOLEAN NOT NULL DEFAULT false;

-- A group may list users that are not synced yet: no foreign key from a member to User (the index stays).
-- DropForeignKey
ALTER TABLE "GroupMember" DROP CONSTRAINT "GroupMember_userId_fkey";
