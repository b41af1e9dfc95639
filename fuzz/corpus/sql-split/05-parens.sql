-- Parentheses: a ';' inside them does not end a statement (psql sends the
-- lot, the server rejects it), nesting, brackets.
SELECT (1 + (2 * 3)) AS seven;
SELECT (1;
2) AS broken;
SELECT 'after the error' AS ok;
SELECT (ARRAY[1, 2, 3])[2:3] AS slice,
       (SELECT count(*)
          FROM (VALUES (1), (2)) v (x)) AS counted;
SELECT 1) AS extra_close;
SELECT 'recovered' AS ok2;
