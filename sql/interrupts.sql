-- A long classification honours a cancel (issue #26, section 5): the core's
-- long loops ask the glue whether a cancel is pending, stop with a C++
-- exception, and the guard then lets PostgreSQL raise the cancel. The test
-- hook 'classify:cancel' makes a cancel pending at the core's first check.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
CREATE TABLE int_msgs (contact int, body text);
SELECT optout.attach_inbound('int_msgs', 'body', 'contact') > 0 AS attached;

SET optout.fault_injection = 'classify:cancel';
-- A short body never reaches a check.
SELECT optout.classify('STOP') AS short_body;
-- Large bodies: ASCII, and the ICU path (accents); classify, explain,
-- normalize, and an inbound row.
SELECT optout.classify(repeat('x', 4000000)) IS NULL AS classified;
SELECT optout.classify(repeat('é', 1000000), 'reasonable') IS NULL AS classified;
SELECT (optout.explain(repeat('stop ', 1000000))).intent AS explained;
SELECT length(optout.normalize(repeat('Ａ', 1000000))) AS normalized;
INSERT INTO int_msgs VALUES (1, repeat('stop ', 1000000));
RESET optout.fault_injection;

-- The same backend then classifies and enforces as before.
SELECT optout.classify(repeat('x', 4000000)) IS NULL AS classified;
SELECT (optout.explain(repeat('stop ', 1000000))).intent AS explained;
INSERT INTO int_msgs VALUES (1, repeat('stop ', 1000000));
SELECT optout.is_stopped('1') AS stopped;
SELECT count(*) AS rows FROM int_msgs;

-- statement_timeout stops a classification of a 20 MB body.
SET statement_timeout = '10ms';
SELECT optout.classify(repeat('see you at the office tomorrow ', 700000), 'reasonable') IS NULL AS classified;
RESET statement_timeout;

DROP TABLE int_msgs;
DROP EXTENSION optout;
