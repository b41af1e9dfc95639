-- SQL-standard function bodies: BEGIN ATOMIC … END, CASE … END inside.
CREATE TABLE log (n int);
CREATE FUNCTION add_two(a int, b int) RETURNS int
LANGUAGE sql
BEGIN ATOMIC
  INSERT INTO log VALUES (a);
  SELECT CASE WHEN a > b THEN a ELSE b END + 0;
  SELECT a + b;
END;
SELECT add_two(1, 2);
create or replace procedure note(x int)
language sql
begin atomic
  insert into log values (x);
  insert into log values (case x when 1 then 10 else 20 end);
end;
CALL note(1);
CREATE FUNCTION plain(begin int) RETURNS int LANGUAGE sql RETURN $1 * 2;
SELECT plain(21);
BEGIN;
INSERT INTO log VALUES (100);
END;
SELECT string_agg(n::text, ',' ORDER BY n) FROM log;
