-- Comments: -- with ; and quotes, nested block comments, comments between
-- and around statements.  '; "; $$;
/* a leading block comment; it is sent with the statement */
SELECT 1 AS a; -- trailing; 'quote
SELECT /* inline; ' " */ 2 AS b;
/* nested /* depth two; */ still a comment; ' */ SELECT 3 AS c;
SELECT 4 -- a comment inside; 'x
  AS d;
SELECT 5 /* multi
line; */ AS e;
SELECT 6 AS f;/* right after */
SELECT 7 --+-- operators and comments
  + 1 AS g, 8 */* star then comment */ 2 AS h;
-- the end; 'x
