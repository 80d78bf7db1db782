-- optout 0.3.0 -> 0.4.0: ALTER EXTENSION optout UPDATE TO '0.4.0'.
-- Every change to the SQL API between the two releases, in the order made.
-- The upgrade test (test/upgrade/) checks that a database updated by this
-- script has the same catalog as a fresh install of 0.4.0.
\echo Use "ALTER EXTENSION optout UPDATE TO '0.4.0'" to load this file. \quit
