-- optout: the review queue. A reply the classifier reads as `review` (a lone
-- "no", "S", "Stop, you're killing me") may be a revocation but is too
-- unclear to stop a contact automatically. An attached inbound table records
-- it as an event of kind 'review'; a person closes it with optout.stop()
-- (any stop of the contact recorded after the review closes it) or with
-- optout.dismiss_review() (an event of kind 'review_dismissed', with the
-- reason). Both stay on record in optout.events.

CREATE VIEW optout.open_reviews AS
SELECT r.id AS review_id, r.at, r.contact, r.channel, r.body AS message, r.rule,
       r.keyword AS word, r.language, r.table_name,
       EXISTS (SELECT 1 FROM optout.stops s WHERE s.contact = r.contact) AS stopped_now
  FROM optout.events r
 WHERE r.kind = 'review'
   AND NOT EXISTS (SELECT 1 FROM optout.events c
                    WHERE c.contact = r.contact AND c.id > r.id
                      AND (c.kind = 'stop'
                           OR (c.kind = 'review_dismissed' AND c.detail ->> 'review' = r.id::text)));
COMMENT ON VIEW optout.open_reviews IS
    'Replies too unclear to act on, waiting for a person: the message, its contact and channel, why (rule, word); closed by optout.stop() or optout.dismiss_review()';

CREATE FUNCTION optout.dismiss_review(review_id bigint, reason text)
    RETURNS boolean AS 'MODULE_PATHNAME', 'optout_dismiss_review' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION optout.dismiss_review(bigint, text) IS
    'Closes an open review without stopping the contact; requires a reason, recorded as an event of kind review_dismissed; true when it closed the review, false when it was already closed';

-- Like the reports: the view shows message bodies, the function writes the
-- record. Grant them to the roles that work the queue.
REVOKE ALL ON optout.open_reviews FROM PUBLIC;
REVOKE ALL ON FUNCTION optout.dismiss_review(bigint, text) FROM PUBLIC;
