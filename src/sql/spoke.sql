-- optout: contacts identified by a phone number within an organization, a
-- platform's own opt-out table, and Spoke in one call (docs/spoke.md).

-- ---------------------------------------------------------------------------
-- Phone numbers. A number is normalised to E.164 ('+' and 8 to 15 digits):
-- spaces, brackets, dots, slashes and dashes are dropped; '+' and digits
-- are kept as they are; 10 digits are a North American number (+1 is
-- added), 11 digits starting with 1 get their '+'. Anything else is an
-- error, never a guess.
CREATE FUNCTION optout.phone_key(phone text)
    RETURNS text
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d text := regexp_replace(phone, '[[:space:]().\-/]', '', 'g');
BEGIN
    IF d ~ '^\+[0-9]{8,15}$' THEN
        RETURN d;
    ELSIF d ~ '^[0-9]{10}$' THEN
        RETURN '+1' || d;
    ELSIF d ~ '^1[0-9]{10}$' THEN
        RETURN '+' || d;
    END IF;
    RAISE EXCEPTION 'optout cannot read % as a phone number', quote_literal(phone)
        USING ERRCODE = 'invalid_parameter_value',
              HINT = 'Write it in E.164 (+, country code and number: +15550100000), or as 10 digits (a North American number), or 11 digits starting with 1.';
END
$$;
COMMENT ON FUNCTION optout.phone_key(text) IS
    'A phone number in E.164 (+15550100000), from the usual ways of writing one; an error for anything else';

-- The ledger's key of a contact known by phone number within an
-- organization: '<organization>:<E.164 number>'.
CREATE FUNCTION optout.contact_key(phone text, organization text)
    RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF phone IS NULL OR organization IS NULL THEN
        RAISE EXCEPTION 'a contact known by phone number needs a number and an organization'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF organization = '' OR strpos(organization, ':') > 0 THEN
        RAISE EXCEPTION 'organization % cannot be part of a contact key', quote_literal(organization)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'An organization key is not empty and has no colon.';
    END IF;
    RETURN organization || ':' || optout.phone_key(phone);
END
$$;
COMMENT ON FUNCTION optout.contact_key(text, text) IS
    'The ledger key of a phone number within an organization: ''<organization>:<E.164 number>''';

-- The ledger key of one row of a keyed attachment, from its contact column
-- (phone) and its organization column (org, as text). strict: a row that has
-- no key (no number, a number optout cannot read, no organization) is an
-- error; otherwise it has key NULL. Runs as the role that writes the row (it
-- is called in the WHEN of optout's triggers), with search_path pinned.
CREATE FUNCTION optout._row_key(attachment integer, phone text, org text, strict boolean)
    RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a record;
    p text;
    o text;
BEGIN
    SELECT x.tbl, x.contact_column, x.contact_format, x.organization_column, x.organization_query INTO a
      FROM optout.attachments x WHERE x.id = attachment;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'optout attachment % does not exist', attachment USING ERRCODE = 'undefined_object';
    END IF;
    IF phone IS NULL THEN
        IF strict THEN
            RAISE EXCEPTION 'a row of % has no %: optout cannot tell whom it is for', a.tbl, quote_ident(a.contact_column)
                USING ERRCODE = 'not_null_violation';
        END IF;
        RETURN NULL;
    END IF;
    IF a.contact_format = 'phone' THEN
        IF strict THEN
            p := optout.phone_key(phone);
        ELSE
            BEGIN
                p := optout.phone_key(phone);
            EXCEPTION WHEN invalid_parameter_value THEN
                RETURN NULL;
            END;
        END IF;
    ELSE
        p := phone;
    END IF;
    IF a.organization_column IS NULL THEN
        RETURN p;
    END IF;
    IF org IS NOT NULL AND a.organization_query IS NOT NULL THEN
        EXECUTE a.organization_query INTO o USING org;
    ELSE
        o := org;
    END IF;
    IF o IS NULL OR o = '' OR strpos(o, ':') > 0 THEN
        IF strict THEN
            RAISE EXCEPTION 'a row of % for % has no organization optout knows (% = %)', a.tbl, quote_literal(p),
                            quote_ident(a.organization_column), coalesce(quote_literal(org), 'NULL')
                USING ERRCODE = 'foreign_key_violation',
                      HINT = 'optout knows this table''s contacts by phone number within an organization: the row must name one.';
        END IF;
        RETURN NULL;
    END IF;
    RETURN o || ':' || p;
END
$$;
GRANT EXECUTE ON FUNCTION optout._row_key(integer, text, text, boolean) TO PUBLIC;

-- The checks of the keyed options of an attach_* function; returns the
-- organization column's type (NULL: the attachment is not keyed).
CREATE FUNCTION optout._key_check(tbl regclass, contact_column name, channel_column name, contact_format text,
                                  organization_column name, organization_query text)
    RETURNS text
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typ text;
BEGIN
    IF contact_format IS NULL AND organization_column IS NULL THEN
        IF organization_query IS NOT NULL THEN
            RAISE EXCEPTION 'organization_query needs organization_column (the value it is given as $1)'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN NULL;
    END IF;
    IF contact_format IS NOT NULL AND contact_format <> 'phone' THEN
        RAISE EXCEPTION 'contact_format must be ''phone'' or NULL, not %', quote_literal(contact_format)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF channel_column IS NOT NULL THEN
        RAISE EXCEPTION 'a contact known by phone number or organization cannot also have a channel column'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Leave channel_column out: a stop of such a contact covers every channel.';
    END IF;
    typ := optout._column(tbl, contact_column, 'contact');
    IF contact_format = 'phone' AND typ NOT IN ('text', 'character varying') AND typ !~ '^character( varying)?\(' THEN
        RAISE EXCEPTION 'column "%" of table % has type %; a phone number must be text or varchar', contact_column, tbl, typ
            USING ERRCODE = 'datatype_mismatch';
    END IF;
    IF organization_column IS NULL THEN
        RETURN 'none';
    END IF;
    typ := optout._column(tbl, organization_column, 'organization');
    IF organization_query IS NOT NULL THEN
        BEGIN
            EXECUTE format('PREPARE optout_attach_verify(text) AS %s', organization_query);
            DEALLOCATE optout_attach_verify;
        EXCEPTION WHEN syntax_error_or_access_rule_violation THEN
            RAISE EXCEPTION 'optout cannot prepare organization_query: %', SQLERRM
                USING ERRCODE = SQLSTATE, DETAIL = format('Query: %s', organization_query),
                      HINT = 'Schema-qualify every name (it runs with search_path = pg_catalog); $1 is the organization column as text.';
        END;
    END IF;
    RETURN typ;
END
$$;

-- The statements of a keyed attachment (and of a platform's opt-out table),
-- by name as optout._action_sql returns them. $1 holds ledger keys;
-- '<organization>:<number>' is split into p.org and p.phone, and a row is
-- found by its number (an index on it serves) and then by its own key.
CREATE FUNCTION optout._keyed_action_sql(a optout.attachments)
    RETURNS TABLE (name text, sql text)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text;
    keys text;
    rowkey text;
    match text;
    cond text;
    sets text;
    cols text;
    vals text;
    reftbl text;
    refcol name;
BEGIN
    SELECT format('%I.%I', n.nspname, c.relname) INTO t
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = a.tbl;
    -- Only keys of this attachment's form: a stop may be another
    -- attachment's contact (a RapidPro contact id), never one of these rows.
    IF a.organization_column IS NOT NULL THEN
        keys := '(SELECT DISTINCT u.k, pg_catalog.split_part(u.k, '':'', 1) AS org, '
                'pg_catalog.substr(u.k, pg_catalog.strpos(u.k, '':'') OPERATOR(pg_catalog.+) 1) AS phone '
                'FROM pg_catalog.unnest($1::pg_catalog.text[]) u(k) '
                'WHERE pg_catalog.strpos(u.k, '':'') OPERATOR(pg_catalog.>) 1)';
    ELSE
        keys := '(SELECT DISTINCT u.k, NULL::pg_catalog.text AS org, u.k AS phone '
                'FROM pg_catalog.unnest($1::pg_catalog.text[]) u(k))';
    END IF;
    IF a.contact_format = 'phone' THEN
        keys := format('(SELECT * FROM %s q WHERE q.phone OPERATOR(pg_catalog.~) ''^\+[0-9]{8,15}$'')', keys);
    END IF;
    rowkey := format('optout._row_key(%s, x.%I::pg_catalog.text, %s, false)', a.id, a.contact_column,
                     coalesce(format('x.%I::pg_catalog.text', a.organization_column), 'NULL'));
    match := format('x.%I::pg_catalog.text OPERATOR(pg_catalog.=) p.phone AND %s OPERATOR(pg_catalog.=) p.k',
                    a.contact_column, rowkey);
    CASE a.kind
    WHEN 'contacts' THEN
        RETURN QUERY VALUES
            ('contacts.stop', format('UPDATE %s x SET %I = %L%s FROM %s p WHERE %s '
                                     'AND (x.%I OPERATOR(pg_catalog.=) %L) IS NOT TRUE',
                                     t, a.status_column, a.stopped_value,
                                     CASE WHEN a.touch_column IS NOT NULL THEN format(', %I = pg_catalog.now()', a.touch_column) ELSE '' END,
                                     keys, match, a.status_column, a.stopped_value)),
            ('contacts.start', format('UPDATE %s x SET %I = %L%s FROM %s p WHERE %s '
                                      'AND x.%I OPERATOR(pg_catalog.=) %L',
                                      t, a.status_column, a.active_value,
                                      CASE WHEN a.touch_column IS NOT NULL THEN format(', %I = pg_catalog.now()', a.touch_column) ELSE '' END,
                                      keys, match, a.status_column, a.stopped_value));
    WHEN 'outbound' THEN
        IF a.queued IS NULL THEN
            RETURN;
        END IF;
        cond := concat_ws(' AND ', match, optout._filter_sql(a.tbl, a.row_filter, 'x.'), optout._filter_sql(a.tbl, a.queued, 'x.'));
        IF a.mark IS NOT NULL AND a.mark <> '{}'::jsonb THEN
            SELECT string_agg(CASE WHEN value = 'null'::jsonb THEN format('%I = NULL', key)
                                   ELSE format('%I = %L', key, value #>> '{}') END, ', ' ORDER BY key)
              INTO sets FROM jsonb_each(a.mark);
            RETURN QUERY VALUES ('outbound.fail_queued', format('WITH f AS (UPDATE %s x SET %s FROM %s p WHERE %s RETURNING p.k) '
                                 'SELECT f.k, pg_catalog.count(*) FROM f GROUP BY 1 ORDER BY f.k COLLATE pg_catalog."C"',
                                 t, sets, keys, cond));
        ELSE
            RETURN QUERY VALUES ('outbound.fail_queued', format('WITH f AS (DELETE FROM %s x USING %s p WHERE %s RETURNING p.k) '
                                 'SELECT f.k, pg_catalog.count(*) FROM f GROUP BY 1 ORDER BY f.k COLLATE pg_catalog."C"',
                                 t, keys, cond));
        END IF;
    WHEN 'optouts' THEN
        -- A stop writes the platform's row (unless one is there); a start
        -- removes every row of the contact, the platform's own included.
        cols := quote_ident(a.contact_column);
        vals := format('p.phone::%s', optout._qualified_type(a.tbl, a.contact_column));
        cond := format('x.%I::pg_catalog.text OPERATOR(pg_catalog.=) p.phone', a.contact_column);
        IF a.organization_column IS NOT NULL THEN
            -- The organization must be one the platform has: where the column
            -- references a table (Spoke's opt_out.organization_id), a stop for
            -- an organization not in it writes no row; otherwise a key that
            -- does not fit the column's type writes none.
            SELECT format('%I.%I', rn.nspname, rc.relname), ra.attname INTO reftbl, refcol
              FROM pg_constraint k
              JOIN pg_attribute ca ON ca.attrelid = k.conrelid AND ca.attnum = k.conkey[1]
              JOIN pg_class rc ON rc.oid = k.confrelid JOIN pg_namespace rn ON rn.oid = rc.relnamespace
              JOIN pg_attribute ra ON ra.attrelid = k.confrelid AND ra.attnum = k.confkey[1]
             WHERE k.conrelid = a.tbl AND k.contype = 'f' AND cardinality(k.conkey) = 1
               AND ca.attname = a.organization_column
             ORDER BY k.conname LIMIT 1;
            cols := cols || ', ' || quote_ident(a.organization_column);
            IF reftbl IS NOT NULL THEN
                vals := vals || ', p.org_ref';
                keys := format('(SELECT q.*, r.%1$I AS org_ref FROM %2$s q JOIN %3$s r ON r.%1$I::pg_catalog.text OPERATOR(pg_catalog.=) q.org)',
                               refcol, keys, reftbl);
            ELSE
                vals := vals || format(', p.org::%s', optout._qualified_type(a.tbl, a.organization_column));
                IF optout._column(a.tbl, a.organization_column, 'organization') IN ('smallint', 'integer', 'bigint') THEN
                    keys := format('(SELECT * FROM %s q WHERE q.org OPERATOR(pg_catalog.~) ''^-?[0-9]{1,18}$'')', keys);
                END IF;
            END IF;
            cond := cond || format(' AND x.%I::pg_catalog.text OPERATOR(pg_catalog.=) p.org', a.organization_column);
        END IF;
        SELECT cols || coalesce(string_agg(', ' || quote_ident(key), '' ORDER BY key), ''),
               vals || coalesce(string_agg(CASE WHEN value = 'null'::jsonb THEN ', NULL'
                                                ELSE format(', %L::%s', value #>> '{}', optout._qualified_type(a.tbl, key::name)) END,
                                           '' ORDER BY key), '')
          INTO cols, vals FROM jsonb_each(coalesce(a.mark, '{}'));
        RETURN QUERY VALUES
            ('optouts.stop', format('INSERT INTO %s (%s) SELECT %s FROM %s p WHERE NOT EXISTS (SELECT 1 FROM %s x WHERE %s)',
                                    t, cols, vals, keys, t, cond)),
            ('optouts.start', format('DELETE FROM %s x USING %s p WHERE %s', t, keys, cond));
    ELSE
        RETURN;
    END CASE;
END
$$;

-- A platform's own opt-out table: a row there is a stop. A stop optout
-- records writes one (contact column, organization column, and the values
-- given), a start removes them, and a row the platform writes itself stops
-- the contact (an event with source 'platform').
CREATE FUNCTION optout.attach_optouts(tbl regclass, contact_column name, contact_format text DEFAULT NULL,
                                      organization_column name DEFAULT NULL, row_values jsonb DEFAULT NULL)
    RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text := optout._attach_check(tbl, 'optouts', contact_column);
    keyed text := optout._key_check(tbl, contact_column, NULL, contact_format, organization_column, NULL);
    c text;
    v jsonb;
    id integer;
BEGIN
    IF row_values IS NOT NULL AND jsonb_typeof(row_values) <> 'object' THEN
        RAISE EXCEPTION 'row_values must be a JSON object of column names and values, not %', row_values
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example: ''{"reason_code": "optout"}''.';
    END IF;
    FOR c, v IN SELECT key, value FROM jsonb_each(coalesce(row_values, '{}')) LOOP
        IF jsonb_typeof(v) IN ('object', 'array') THEN
            RAISE EXCEPTION 'the value for column "%" must be a value or null', c USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF c::name IN (contact_column, organization_column) THEN
            RAISE EXCEPTION 'column "%" is written by optout; it cannot be in row_values', c USING ERRCODE = 'invalid_parameter_value';
        END IF;
        PERFORM optout._check_value(tbl, c::name, v #>> '{}');
    END LOOP;
    INSERT INTO optout.attachments AS a (tbl, kind, contact_column, mark, contact_format, organization_column)
    VALUES (attach_optouts.tbl, 'optouts', attach_optouts.contact_column, nullif(attach_optouts.row_values, '{}'),
            attach_optouts.contact_format, attach_optouts.organization_column)
    RETURNING a.id INTO id;
    PERFORM optout._attach_verify(id);
    EXECUTE format('CREATE TRIGGER optout_optouts AFTER INSERT ON %s FOR EACH ROW EXECUTE FUNCTION optout._optouts_trigger(%L)',
                   t, id);
    PERFORM optout._flush_triggers(tbl);
    RETURN id;
END
$$;
CREATE FUNCTION optout._optouts_trigger() RETURNS trigger AS 'MODULE_PATHNAME', 'optout_optouts_trigger' LANGUAGE C;
COMMENT ON FUNCTION optout.attach_optouts(regclass, name, text, name, jsonb) IS
    'Attaches a platform''s own opt-out table: optout''s stops write its rows, starts remove them, its own rows are stops';

-- ---------------------------------------------------------------------------
-- Spoke in one call (see docs/spoke.md). A contact is a phone number within
-- an organization; Spoke's opt_out rows are the stops; a send to a stopped
-- number is refused (Spoke sends the message it saved, not the row, so a
-- marked row would still go out); queued messages are failed. Spoke's own
-- reply to a STOP (auto-optout's SEND_AUTO_OPT_OUT_RESPONSE) is sent with
-- no texter (user_id NULL): by default that row is the stop's one
-- confirmation; confirmation => NULL refuses it too.
CREATE FUNCTION optout.attach_spoke(schema name DEFAULT 'public', confirmation jsonb DEFAULT '{"user_id": null}')
    RETURNS SETOF optout.attached
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text;
    org_of_contact text;
BEGIN
    IF schema IS NULL OR NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = schema) THEN
        RAISE EXCEPTION 'schema % does not exist', coalesce(quote_ident(schema), 'NULL')
            USING ERRCODE = 'invalid_schema_name', HINT = 'Name the schema that holds Spoke''s tables.';
    END IF;
    FOREACH t IN ARRAY ARRAY['organization', 'campaign', 'campaign_contact', 'message', 'opt_out'] LOOP
        IF to_regclass(format('%I.%I', schema, t)) IS NULL THEN
            RAISE EXCEPTION 'table %.% does not exist: is this a Spoke database?', quote_ident(schema), t
                USING ERRCODE = 'undefined_table';
        END IF;
    END LOOP;
    org_of_contact := format('SELECT c.organization_id::pg_catalog.text FROM %1$I.campaign_contact cc '
                             'JOIN %1$I.campaign c ON c.id OPERATOR(pg_catalog.=) cc.campaign_id '
                             'WHERE cc.id OPERATOR(pg_catalog.=) $1::pg_catalog.int4', schema);
    -- Order matters: is_opted_out first, then Spoke's opt_out rows, then messages.
    PERFORM optout.attach_contacts(format('%I.campaign_contact', schema)::regclass, 'cell', 'is_opted_out', 't', 'f',
                                   contact_format => 'phone', organization_column => 'campaign_id',
                                   organization_query => format('SELECT c.organization_id::pg_catalog.text FROM %I.campaign c '
                                                                'WHERE c.id OPERATOR(pg_catalog.=) $1::pg_catalog.int4', schema));
    PERFORM optout.attach_optouts(format('%I.opt_out', schema)::regclass, 'cell', contact_format => 'phone',
                                  organization_column => 'organization_id', row_values => '{"reason_code": "optout"}');
    PERFORM optout.attach_inbound(format('%I.message', schema)::regclass, 'text', 'contact_number',
                                  row_filter => '{"is_from_contact": true}', contact_format => 'phone',
                                  organization_column => 'campaign_contact_id', organization_query => org_of_contact);
    PERFORM optout.attach_outbound(format('%I.message', schema)::regclass, 'contact_number', on_blocked => 'error',
                                   mark => '{"send_status": "ERROR", "error_code": 21610}',
                                   queued => '{"send_status": ["QUEUED", "PAUSED"]}',
                                   row_filter => '{"is_from_contact": false}', confirmation => attach_spoke.confirmation,
                                   contact_format => 'phone',
                                   organization_column => 'campaign_contact_id', organization_query => org_of_contact);
    RETURN QUERY SELECT * FROM optout.attached a
                  WHERE a.tbl::oid IN (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                        WHERE n.nspname = schema)
                  ORDER BY a.id;
END
$$;
REVOKE ALL ON FUNCTION optout.attach_spoke(name, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION optout.attach_spoke(name, jsonb) IS
    'Wires a Spoke database: keyword stops on message, a stop per phone number and organization, Spoke''s opt_out rows, is_opted_out, refused sends, its auto-optout reply as the confirmation';

REVOKE ALL ON FUNCTION optout.attach_optouts(regclass, name, text, name, jsonb),
    optout._key_check(regclass, name, name, text, name, text), optout._keyed_action_sql(optout.attachments)
  FROM PUBLIC;
