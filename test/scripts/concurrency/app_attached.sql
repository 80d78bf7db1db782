-- The attached schema: optout wired in with one call; a stop and a start by
-- hand are optout's (audited).
CREATE EXTENSION optout;
SELECT count(*) AS attached FROM optout.attach_rapidpro();
CREATE FUNCTION app_stop(c integer) RETURNS boolean LANGUAGE sql AS $$
    SELECT optout.stop(c::text, reason => 'agent');
$$;
CREATE FUNCTION app_start(c integer) RETURNS boolean LANGUAGE sql AS $$
    SELECT optout.start(c::text, reason => 'agent');
$$;
