-- Workload "classify" of bench/run.sh (psql variables :rows, :runs).
-- One query over :rows realistic bodies (97% conversation, 3% keyword
-- variants, from run-common.sql) per variant:
--   floor       lower(btrim(body)) = ANY(<the enabled keywords>)
--   standard    optout.classify(body, 'standard')
--   reasonable  optout.classify(body, 'reasonable')
--   plpgsql     bench.plpgsql_standard(): 'standard' written in PL/pgSQL
\set ON_ERROR_STOP 1

-- An approximation of the 'standard' mode in PL/pgSQL, as a platform might
-- write it without optout: lower case, NFKC and the common accents, strip
-- punctuation and emoji at both ends, collapse white space, then the keyword
-- array (the whole message, however its letters are separated), then opt-out
-- keywords with courtesy words. It has no quote rule and no Unicode case
-- folding beyond lower(); on these bodies it agrees with optout.classify.
CREATE FUNCTION bench.plpgsql_standard(body text, keys text[], intents text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    s text;
    p int;
    w text;
    n int := 0;
BEGIN
    IF body IS NULL THEN
        RETURN NULL;
    END IF;
    s := translate(lower(normalize(body, NFKC)), 'àâäáãåçéèêëíìîïñóòôöõúùûüý', 'aaaaaaceeeeiiiinooooouuuuy');
    s := regexp_replace(s, '^[^[:alnum:]]+|[^[:alnum:]]+$', '', 'g');
    s := regexp_replace(s, '\s+', ' ', 'g');
    p := array_position(keys, regexp_replace(s, '[^[:alnum:]]+', '', 'g'));
    IF p IS NOT NULL THEN
        RETURN intents[p];
    END IF;
    FOREACH w IN ARRAY regexp_split_to_array(s, '[^[:alnum:]]+') LOOP
        CONTINUE WHEN w IN ('please', 'pls', 'plz', 'now', 'thanks', 'thank', 'you', 'thx', 'ty', 'ok', 'okay');
        p := array_position(keys, w);
        IF p IS NULL OR intents[p] <> 'opt_out' THEN
            RETURN NULL;
        END IF;
        n := n + 1;
    END LOOP;
    RETURN CASE WHEN n > 0 THEN 'opt_out' END;
END
$$;

SELECT setseed(0.7) \gset
CALL bench.build('classify: ' || :rows || ' bodies', format($q$
    CREATE TABLE bench.bodies AS
    SELECT CASE WHEN random() < 0.97 THEN bench.conversation(i) ELSE bench.keyword_message(i) END AS body
      FROM generate_series(1, %s) AS i$q$, :rows));
VACUUM ANALYZE bench.bodies;

-- The floor and the PL/pgSQL function use exactly the enabled keywords.
SELECT array_agg(keyword) AS kw,
       array_agg(optout.keyword_key(keyword) ORDER BY intent <> 'opt_out', keyword) AS keys,
       array_agg(intent::text ORDER BY intent <> 'opt_out', keyword) AS intents
  FROM optout.keywords WHERE enabled \gset

INSERT INTO bench.variants (workload, variant, ord, query) VALUES
    ('classify', 'floor', 1, format('SELECT count(*) FILTER (WHERE lower(btrim(body)) = ANY(%L::text[])) FROM bench.bodies', :'kw')),
    ('classify', 'standard', 2, 'SELECT count(*) FILTER (WHERE optout.classify(body, ''standard'') IS NOT NULL) FROM bench.bodies'),
    ('classify', 'reasonable', 3, 'SELECT count(*) FILTER (WHERE optout.classify(body, ''reasonable'') IS NOT NULL) FROM bench.bodies'),
    ('classify', 'plpgsql', 4, format('SELECT count(*) FILTER (WHERE bench.plpgsql_standard(body, %L, %L) IS NOT NULL) FROM bench.bodies',
                                      :'keys', :'intents'));

-- Warm-up: the whole table into shared buffers, the keyword cache; and the
-- PL/pgSQL function agrees with 'standard' here (printed, for the record).
SELECT count(*) FILTER (WHERE lower(btrim(body)) = ANY(:'kw')) AS floor_matches FROM bench.bodies;
SELECT count(*) FILTER (WHERE optout.classify(body, 'standard') IS NOT NULL) AS standard_matches,
       count(*) FILTER (WHERE bench.plpgsql_standard(body, :'keys', :'intents') IS NOT NULL) AS plpgsql_matches,
       -- (the PL/pgSQL function has no review outcome: a review, never a stop, counts as no match here)
       count(*) FILTER (WHERE bench.plpgsql_standard(body, :'keys', :'intents')
                              IS DISTINCT FROM nullif(optout.classify(body, 'standard')::text, 'review')) AS disagreements
  FROM (SELECT body FROM bench.bodies LIMIT 100000) s;

SELECT s FROM bench.schedule('classify', :runs) s \gexec

SELECT * FROM bench.medians('classify');
SELECT * FROM bench.target('classify', '`standard` vs the floor', 'standard', 'floor', '<=', 2)
UNION ALL SELECT * FROM bench.target('classify', '`reasonable` vs the floor', 'reasonable', 'floor', '<=', 3)
UNION ALL SELECT * FROM bench.target('classify', 'PL/pgSQL `standard` vs `standard` (times slower)', 'plpgsql', 'standard', '>=', 10);
