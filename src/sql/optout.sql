-- optout's SQL API, by topic, in the order the install script needs (each
-- file uses only what the files before it create). The Makefile assembles
-- these into optout--<version>.sql; this list is its order.
\ir classifier.sql
\ir ledger.sql
\ir attachments.sql
\ir statements.sql
\ir attach.sql
\ir ddl.sql
\ir rapidpro.sql
\ir spoke.sql
\ir review.sql
\ir reports.sql
\ir backfill.sql
\ir citus.sql
