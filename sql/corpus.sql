-- Every line of the shared corpus (test/data/inbound.jsonl, a copy of
-- ../shared/corpus/inbound.jsonl) in every mode.
CREATE EXTENSION optout;
-- Bodies are shown as JSON text with the Unicode format characters (soft
-- hyphen, zero-width and direction marks, BOM, tags) escaped as \uXXXX, or
-- \u{XXXXX} beyond the BMP: psql 15 counts them one column wide and psql 18
-- zero, so printed raw they would pad the table differently on each version.
CREATE FUNCTION pg_temp.shown(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT string_agg(CASE WHEN c !~ E'[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\U000e0000-\U000e007f]' THEN c
                         WHEN ascii(c) > 65535 THEN format('\u{%s}', to_hex(ascii(c)))
                         ELSE format('\u%s', lpad(to_hex(ascii(c)), 4, '0')) END, '' ORDER BY i)
    FROM regexp_split_to_table(to_json(t)::text, '') WITH ORDINALITY AS s(c, i)
$$;
\getenv abs_srcdir PG_ABS_SRCDIR
\set corpus_file :abs_srcdir '/test/data/inbound.jsonl'
CREATE TEMP TABLE corpus_raw (n serial, line text);
-- CSV with quote and delimiter characters that never occur: one line, one row,
-- backslashes kept.
COPY corpus_raw (line) FROM :'corpus_file' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');
CREATE TEMP TABLE corpus AS
SELECT n,
       (line::jsonb) ->> 'body' AS body,
       ((line::jsonb) ->> 'exact')::optout.intent AS exact,
       ((line::jsonb) ->> 'standard')::optout.intent AS standard,
       ((line::jsonb) ->> 'reasonable')::optout.intent AS reasonable
  FROM corpus_raw;

SELECT count(*) AS lines FROM corpus;

-- Mismatches: none expected.
SELECT c.n, pg_temp.shown(c.body) AS body, m.mode, m.expected, m.got
  FROM corpus c
 CROSS JOIN LATERAL (VALUES
        ('exact'::optout.match_mode, c.exact, optout.classify(c.body, 'exact')),
        ('standard', c.standard, optout.classify(c.body, 'standard')),
        ('reasonable', c.reasonable, optout.classify(c.body, 'reasonable'))) AS m(mode, expected, got)
 WHERE m.expected IS DISTINCT FROM m.got
 ORDER BY c.n, m.mode;

-- Per mode: lines, matches, and how the labels are spread.
SELECT m.mode,
       count(*) AS lines,
       count(*) FILTER (WHERE m.expected IS NOT DISTINCT FROM m.got) AS matched,
       count(*) FILTER (WHERE m.got = 'opt_out') AS opt_out,
       count(*) FILTER (WHERE m.got = 'opt_in') AS opt_in,
       count(*) FILTER (WHERE m.got = 'help') AS help,
       count(*) FILTER (WHERE m.got IS NULL) AS "none"
  FROM corpus c
 CROSS JOIN LATERAL (VALUES
        ('exact'::optout.match_mode, c.exact, optout.classify(c.body, 'exact')),
        ('standard', c.standard, optout.classify(c.body, 'standard')),
        ('reasonable', c.reasonable, optout.classify(c.body, 'reasonable'))) AS m(mode, expected, got)
 GROUP BY m.mode ORDER BY m.mode;

-- The whole corpus as the classifier reads it, for review.
SELECT c.n, pg_temp.shown(c.body) AS body,
       e.intent AS standard, e.rule, e.keyword,
       optout.classify(c.body, 'reasonable') AS reasonable,
       to_json(e.normalized)::text AS normalized
  FROM corpus c, LATERAL optout.explain(c.body, 'standard') e
 ORDER BY c.n;

DROP TABLE corpus, corpus_raw;
DROP EXTENSION optout;
