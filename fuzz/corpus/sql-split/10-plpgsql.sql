-- PL/pgSQL bodies in dollar quotes and in a plain string, DO blocks.
CREATE FUNCTION greet(who text) RETURNS text
LANGUAGE plpgsql AS $body$
DECLARE
  msg text := 'it''s ' || who || ';';
BEGIN
  IF who = '$$' THEN
    RETURN $$dollars; $x$ $$;
  END IF;
  RAISE NOTICE 'greeting %; done', who;
  RETURN msg;
END;
$body$;
SELECT greet('you'), greet('$$');
CREATE FUNCTION old_style() RETURNS int LANGUAGE plpgsql AS '
BEGIN
  RETURN 42; -- in a string; ''quoted''
END;
';
SELECT old_style();
DO $$
BEGIN
  PERFORM 1;
  RAISE NOTICE 'inside DO; %', E'\\';
END
$$;
DO LANGUAGE plpgsql $do$ BEGIN NULL; END $do$;
SELECT E'\\' AS backslash, '\' AS also_backslash;
