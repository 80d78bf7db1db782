-- The families of 0.2 (test/data/families.jsonl): look-alike letters, typos,
-- courtesy words per language, other languages, legal-style revocations, a
-- keyword sentence first, the default verbs per language, the review queue.
-- Every line in every mode, then the per-family table of docs/classifier.md.
CREATE EXTENSION optout;
\getenv abs_srcdir PG_ABS_SRCDIR
\set families_file :abs_srcdir '/test/data/families.jsonl'
CREATE TEMP TABLE families_raw (n serial, line text);
COPY families_raw (line) FROM :'families_file' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');
CREATE TEMP TABLE families AS
SELECT n,
       (line::jsonb) ->> 'body' AS body,
       (line::jsonb) ->> 'family' AS family,
       (line::jsonb) ->> 'kind' AS kind,
       ((line::jsonb) ->> 'exact')::optout.intent AS exact,
       ((line::jsonb) ->> 'standard')::optout.intent AS standard,
       ((line::jsonb) ->> 'reasonable')::optout.intent AS reasonable
  FROM families_raw;
CREATE TEMP TABLE results AS
SELECT f.*, m.mode, m.expected, m.got
  FROM families f
 CROSS JOIN LATERAL (VALUES
        ('exact'::optout.match_mode, f.exact, optout.classify(f.body, 'exact')),
        ('standard', f.standard, optout.classify(f.body, 'standard')),
        ('reasonable', f.reasonable, optout.classify(f.body, 'reasonable'))) AS m(mode, expected, got);

SELECT count(*) AS lines, count(*) FILTER (WHERE kind = 'trap') AS traps FROM families;

-- Mismatches: none expected.
SELECT n, to_json(body)::text AS body, mode, expected, got
  FROM results WHERE expected IS DISTINCT FROM got ORDER BY n, mode;

-- Per family: the cases caught in each mode (read as expected, not NULL),
-- and the traps read as an opt-out in each mode (none expected).
SELECT family,
       count(*) FILTER (WHERE kind = 'catch' AND mode = 'exact' AND got IS NOT NULL AND got = expected)
           || ' / ' || count(*) FILTER (WHERE kind = 'catch' AND mode = 'exact') AS caught_exact,
       count(*) FILTER (WHERE kind = 'catch' AND mode = 'standard' AND got IS NOT NULL AND got = expected)
           || ' / ' || count(*) FILTER (WHERE kind = 'catch' AND mode = 'standard') AS caught_standard,
       count(*) FILTER (WHERE kind = 'catch' AND mode = 'reasonable' AND got IS NOT NULL AND got = expected)
           || ' / ' || count(*) FILTER (WHERE kind = 'catch' AND mode = 'reasonable') AS caught_reasonable,
       count(*) FILTER (WHERE kind = 'trap' AND mode = 'exact') AS traps,
       count(*) FILTER (WHERE kind = 'trap' AND got = 'opt_out' AND mode = 'exact') || ' / '
           || count(*) FILTER (WHERE kind = 'trap' AND got = 'opt_out' AND mode = 'standard') || ' / '
           || count(*) FILTER (WHERE kind = 'trap' AND got = 'opt_out' AND mode = 'reasonable') AS traps_stopped_e_s_r
  FROM results
 GROUP BY family
 ORDER BY min(n);

-- The rule explain() gives for the caught cases of each family, in
-- reasonable mode.
SELECT f.family, x.rule, count(*) AS cases
  FROM families f, LATERAL optout.explain(f.body, 'reasonable') x
 WHERE f.kind = 'catch'
 GROUP BY 1, 2
 ORDER BY min(f.n), 2;

-- A few through explain(), with the keyword or phrase and language reported.
SELECT b AS body, x.intent, x.rule, x.keyword, x.language
  FROM unnest(ARRAY['СANCEL', 'ΕND', 'usnubscribe', 'Arrêt merci', 'ya no quiero recibir mensajes',
                    'je ne veux plus recevoir vos SMS', 'parem de me enviar mensagens',
                    'schreiben Sie mir nicht mehr', 'please withdraw my consent', 'wrong number',
                    'END. Not interested', 'Désabonner', 'no']) WITH ORDINALITY AS u(b, i),
       LATERAL optout.explain(u.b, 'reasonable') x
 ORDER BY u.i;
-- A keyword of another language written in its own script is its own
-- keyword, not a look-alike.
SELECT optout.classify('СТОП', 'reasonable') AS before;
INSERT INTO optout.keywords (keyword, intent, language) VALUES ('стоп', 'opt_out', 'ru');
SELECT x.intent, x.rule, x.keyword, x.language FROM optout.explain('СТОП!', 'standard') x;

-- Issue #25, the replies still missed: each family in reasonable only, with
-- its traps (a question, a negation, a quote, a real word), in every mode.
SELECT b AS body, optout.classify(b, 'exact') AS exact, optout.classify(b, 'standard') AS standard,
       x.intent AS reasonable, x.keyword, x.language
  FROM unnest(ARRAY['I don''t want to hear from you again', 'never contact me again', 'you never text me anymore',
                    'If you don''t want to hear from us reply STOP', 'Leave.', 'leave?', 'should I leave?',
                    'I won''t leave', 'Liked “Leave”', 'forget my number', 'can you delete my number?',
                    'Did you lose my number?', 'don''t lose my number', 'He said "delete my number"',
                    'me desuscribo', 'je veux me désinscrire', 'quero me descadastrar', 'melde mich ab',
                    'melde mich nicht ab', 'ich melde mich']) WITH ORDINALITY AS u(b, i),
       LATERAL optout.explain(u.b, 'reasonable') x
 ORDER BY u.i;

DROP TABLE results, families, families_raw;
DROP EXTENSION optout;
