-- optout demo: the classifier on a realistic mix of inbound messages.
\pset footer off
\pset null '·'
CREATE EXTENSION optout;

\echo '1. An afternoon of inbound SMS, read in each mode.'
\echo '   exact is how providers match; standard (the default) adds Unicode'
\echo '   normalisation, separators, repeats and courtesy words; reasonable adds'
\echo '   natural-language requests, as the FCC requires since April 2025.'
CREATE TEMP TABLE inbound (id serial, body text);
INSERT INTO inbound (body) VALUES
    ('Yes, see you at 3!'),
    ('STOP'),
    ('Stop please'),
    ('ＳＴＯＰ'),
    (E'S\u200bTOP'),
    ('opt-out'),
    ('Arrêt'),
    ('BAJA'),
    ('stop texting me'),
    ('please remove me from your list'),
    ('Liked “Reply STOP to unsubscribe”'),
    ('Stop by the office at 5'),
    ('I can''t stop laughing 😂'),
    ('thanks'),
    ('START'),
    ('Help?'),
    ('yes please');

SELECT id, body,
       optout.classify(body, 'exact')      AS exact,
       optout.classify(body, 'standard')   AS standard,
       optout.classify(body, 'reasonable') AS reasonable
  FROM inbound ORDER BY id;

\echo '2. Why? explain() names the keyword, its language, the rule and the normalised text.'
SELECT i.body, e.intent, e.keyword, e.language, e.rule, e.normalized
  FROM inbound i, LATERAL optout.explain(i.body, 'reasonable') e
 WHERE e.intent IS NOT NULL ORDER BY i.id;

\echo '3. Keywords are a table: add your own, disable a default.'
INSERT INTO optout.keywords (keyword, intent, language) VALUES ('desinscribir', 'opt_out', 'es');
UPDATE optout.keywords SET enabled = false WHERE keyword = 'yes';
SELECT b AS body, optout.classify(b) AS standard
  FROM (VALUES ('Desinscribir'), ('yes'), ('start')) AS v(b);

\echo '4. A keyword belongs to one intent: a conflicting one is refused.'
\set ON_ERROR_STOP 0
\set SHOW_CONTEXT never
INSERT INTO optout.keywords (keyword, intent) VALUES ('S.T.O.P', 'opt_in');
\set ON_ERROR_STOP 1

\echo '5. The setting optout.match_mode picks the mode for a database or session.'
SET optout.match_mode = 'reasonable';
SELECT optout.classify('please stop messaging me') AS reasonable_by_setting;
