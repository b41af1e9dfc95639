-- psql backslash commands: on their own line, inside a statement, \\ back
-- to SQL, \g, \; and \r.
\set ON_ERROR_STOP off
\set greeting 'hello world'
SELECT 1 AS one;
SELECT 2
\set inside 1
  AS two;
\unset inside \\ SELECT 3 AS three;
SELECT 4 AS four \g
SELECT 5 \set x 5 \set y 6
, 6;
SELECT 7 AS seven\; SELECT 8 AS eight;
SELECT 'discarded'
\r
SELECT 9 AS nine;
\set ON_ERROR_STOP on
SELECT '\not a command' AS backslash, $$\neither$$;
SELECT 10
\g
