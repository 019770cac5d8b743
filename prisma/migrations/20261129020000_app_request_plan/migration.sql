-- AlterTable
ALTER TABLE "AppRequest" ADD COLUMN     "plan" JSONB;

