-- Failed messages of 50 contacts queued again (a retry).
\set a random(1, :contacts - 50)
UPDATE msgs_msg SET status = 'Q', failed_reason = NULL, modified_on = now()
 WHERE direction = 'O' AND status = 'F' AND contact_id BETWEEN :a AND :a + 50;
