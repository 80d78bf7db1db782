-- Hostile and unusual input: every case returns, none crashes or errors.
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

-- 1 MB bodies: ordinary text, a long run of keywords, combining marks, one word.
SELECT m AS mode,
       optout.classify(repeat('see you at the office tomorrow ', 35000), m) AS prose,
       optout.classify(repeat('stop ', 210000), m) AS stops,
       optout.classify('stop' || repeat(E'\u0301', 500000), m) AS marks,
       optout.classify(repeat('x', 1048576), m) AS one_word
  FROM unnest(enum_range(NULL::optout.match_mode)) AS m;
SELECT length(optout.normalize(repeat('Ｓｔｏｐ ', 200000))) AS normalized_length;

-- 10,000 emoji, alone and around a keyword.
SELECT optout.classify(repeat('🛑', 10000)) AS emoji_only,
       optout.classify(repeat('🛑', 10000) || ' STOP ' || repeat('🙏', 10000)) AS emoji_around_stop,
       optout.classify(repeat('👍🏽', 10000) || 'stop') AS skin_tones;

-- Every plane, combining sequences, right-to-left text, lone marks.
SELECT pg_temp.shown(b) AS body, optout.classify(b, 'standard') AS s, optout.classify(b, 'reasonable') AS r,
       to_json(optout.normalize(b))::text AS normalized
  FROM (VALUES (E'\u0301'), (E'\u0301\u0302\u0303'), (E'\u0301STOP'), ('مرحبا stop'), ('stop مرحبا'),
               (E'\u202eSTOP\u202c'), ('שלום'), ('𝐒𝐓𝐎𝐏'), ('🅂🅃🄾🄿'), ('Ⓢⓣⓞⓟ'), (E'\U0010FFFD'),
               (E'\U000E0001STOP\U000E007F'), ('ｓｔｏｐ　ａｌｌ'), ('ＳＴＯＰ　ＰＬＥＡＳＥ'), ('ꜱᴛᴏᴘ'),
               ('СТОП'), ('Ｈｅｌｐ'), (E'\uFEFFSTOP'), ('ST' || chr(173) || 'OP'), (E'\x7fSTOP')) AS v(b);

-- Invalid arguments give clear errors.
SELECT optout.classify('STOP', 'fuzzy');
SELECT optout.explain('STOP', 'fuzzy');

-- A body from a non-UTF-8 client is converted by the server as usual.
SET client_encoding = 'LATIN1';
SELECT optout.classify(convert_from('\x415252c954'::bytea, 'LATIN1')) AS latin1_arret;
RESET client_encoding;

DROP EXTENSION optout;
