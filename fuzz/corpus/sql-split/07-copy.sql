CREATE TABLE items (id int, name text, note text);
COPY items FROM stdin; SELECT count(*) AS rest_of_line
1	apple	semi;colon
2	pear	\N
3	--dash	'quote
\.
  FROM items;
COPY items (id, name) FROM STDIN WITH (FORMAT csv);
4,"a;b"
5,"c,d"
\.
SELECT id, name, note FROM items ORDER BY id;
COPY (SELECT 1) TO STDOUT;
