-- Least privilege. The owner role (the one that runs this migration) owns every table and alone may
-- alter, drop or truncate them. The processes (worker, ingress, CLI, codec server) connect as the
-- application role "selfservice_app", which gets only the rights below. The role itself, with its
-- password, is made outside the migrations (services/stack.sh, docker-compose.yml, README "Database
-- roles") and must exist before this migration runs. Other login roles may be members of it.
-- (No semicolon in comments: the migration engine splits on every one.)

GRANT USAGE ON SCHEMA public TO selfservice_app;

-- Nobody but the owner creates objects in the schema (already so on PostgreSQL 15, kept explicit).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- Reading and writing the state tables, but no TRUNCATE, REFERENCES or TRIGGER anywhere.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO selfservice_app;

-- Prisma's own bookkeeping is the owner's alone.
REVOKE ALL ON "_prisma_migrations" FROM selfservice_app;

-- The audit trail and the request history are append-only for the application: read and add, never
-- change, delete or truncate (TRUNCATE bypasses the audit trail's rules, the missing privilege does not).
REVOKE UPDATE, DELETE, TRUNCATE ON "AuditEntry", "AppRequestEvent" FROM selfservice_app;

-- Ids from sequences (nextval): USAGE only, no setval.
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO selfservice_app;

-- Tables and sequences that later migrations create (as this owner) get the same rights. A later
-- append-only table must REVOKE UPDATE, DELETE in its own migration and be listed in
-- test/integration/database-roles.test.ts.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO selfservice_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE ON SEQUENCES TO selfservice_app;
