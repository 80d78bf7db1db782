-- The demo (demo/demo.sql) as a test: run as scripts/demo.sh runs it, in a
-- psql of its own, with its whole output checked. test/demo/mask.sed masks
-- what changes from run to run (times, dates, durations, the backfill's rate)
-- and collapses the padding of the tables (a masked value changes the width of
-- its column). The Makefile names the psql to use in OPTOUT_PSQL.
\getenv abs_srcdir PG_ABS_SRCDIR
\set demo_file :abs_srcdir '/demo/demo.sql'
\set mask_file :abs_srcdir '/test/demo/mask.sed'
\setenv OPTOUT_DEMO :demo_file
\setenv OPTOUT_DEMO_MASK :mask_file
\setenv PGDATABASE :DBNAME
\setenv PGDATESTYLE ISO
\! { "${OPTOUT_PSQL:-psql}" -X -q -v ON_ERROR_STOP=1 -f "$OPTOUT_DEMO" 2>&1; echo "psql exit status: $?"; } | sed -E -f "$OPTOUT_DEMO_MASK"
-- The demo leaves its platform and the extension behind: remove them.
DROP SCHEMA shop CASCADE;
DROP EXTENSION optout;
