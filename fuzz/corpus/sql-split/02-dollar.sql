-- Dollar quotes: tags, nesting different tags, $n parameters, identifiers
-- containing '$'.
SELECT $$a; 'b' "c" -- d /* e$$ AS one;
SELECT $fn$ outer $$ inner; $$ still; $x$ $fn$ AS nested;
SELECT $A$ case $a$ matters; $A$ AS tags;
SELECT $_1$ $1 $__$ ; $_1$ AS underscore_tag;
PREPARE q (int, text) AS SELECT $1 + 1, $2 || ';';
EXECUTE q (41, 'x');
DEALLOCATE q;
CREATE TABLE money$ (a$b int, c$ text);
INSERT INTO money$ VALUES (1, '$$;');
SELECT a$b, c$ FROM money$;
SELECT $body$
multi; line
$notend$ ;
$body$ AS body;
