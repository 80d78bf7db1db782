# sql/demo.sql: what changes from one run of demo/demo.sql to the next.
# Where the demo is:
s/psql:[^ ]*demo\/demo\.sql:/psql:demo\/demo.sql:/
# Times and dates (PGDATESTYLE=ISO), in the JSON and in the tables:
s/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+[-+][0-9:]+/<time>/g
s/[0-9]{4}-[0-9]{2}-[0-9]{2}/<date>/g
# Durations and the backfill's rate:
s/"seconds_after_(stop|help)": [0-9.]+/"seconds_after_\1": <s>/g
s/\([0-9]+ rows\/s\)/(<n> rows\/s)/g
# The business days from Dana's STOP in March 2026 to today:
s/^( *4 *\| backfill *\| STOP *\| <date> *\| <date> *\| *)[0-9]+/\1<n>/
# A masked value changes the width of its column (and psql 15 and 18 give
# some characters different widths): collapse the padding around the
# separators, at the start and end of a line, of the heading of a one-column
# result, and the rules under headings; the JSON's indentation stays.
s/ +\|/ |/g
s/\| +/| /g
s/ *\+$/ +/
s/ +$//
s/^ +(jsonb_pretty)$/ \1/
s/^ +([^ |][^|]*) \|/ \1 |/
s/-{2,}/--/g
