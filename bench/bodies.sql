-- The message bodies and contacts of the benchmarks, created in the first
-- schema of search_path (bench/run-common.sql: schema bench;
-- bench/profile.sql: public). Realistic bodies: conversation, and keyword
-- variants (opt-outs mostly, some START, HELP, and a phrase only the
-- 'reasonable' mode reads as an opt-out).
CREATE FUNCTION conversation(i bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT (ARRAY['Yes, see you at 3!', 'ok thanks', 'What time is my appointment tomorrow?',
                  'Can you send me the address again please', 'Thank you so much 😊', 'No', 'Sure',
                  'I''ll be there in 10 minutes', 'Who is this?', 'Please call me back when you can',
                  'Is the office open on Saturday?', 'Got it, thanks!', 'How much does it cost?',
                  'I already paid last week', 'Can we move it to Friday?', 'Stop by the office at 5',
                  'The end of the month works for me', 'Great, see you then 👍', 'wrong number',
                  'Hola, ¿a qué hora abren mañana?', 'Merci beaucoup, à demain'])[1 + (i % 21)]
           || CASE WHEN i % 7 = 0 THEN ' ' || (i % 1000)::text ELSE '' END
$$;
CREATE FUNCTION keyword_message(i bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT (ARRAY['STOP', 'stop', 'Stop please', 'STOP.', 'unsubscribe', 'ＳＴＯＰ', 'Arrêt', 'opt-out',
                  'START', 'HELP', 'Cancel', 'stop texting me', 'quit', 'End'])[1 + (i % 14)]
$$;
-- A contact for message i, spread evenly and reproducibly over 1..n.
CREATE FUNCTION contact_of(i bigint, n int) RETURNS int LANGUAGE sql IMMUTABLE AS $$
    SELECT 1 + ((hashint8(i)::bigint + 2147483648) % n)::int
$$;
