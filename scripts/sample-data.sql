-- sample-data.sql: a small bookshop for `make run` and manual testing.
--
-- Loaded by `scripts/test-env.sh --sample-data` into the database
-- tusk_sample; also loads anywhere with `psql -f`.  Deterministic (setseed),
-- about 1,700 rows, in about 0.2 s.  It exercises what a client
-- must show well: foreign keys, an enum, a view, NULLs, numeric, dates,
-- timestamps with time zone, arrays, jsonb, and non-ASCII text.

SET client_min_messages = warning;
DO $$ BEGIN PERFORM setseed(0.42); END $$;  -- deterministic random()

CREATE TYPE order_status AS ENUM ('pending', 'paid', 'shipped', 'delivered', 'cancelled');

CREATE TABLE authors (
  author_id   integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name        text NOT NULL,
  country     text,                       -- NULL when unknown
  born        date,
  bio         text
);
COMMENT ON TABLE authors IS 'People who wrote the books on sale.';

CREATE TABLE books (
  book_id     integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  author_id   integer NOT NULL REFERENCES authors ON DELETE RESTRICT,
  title       text NOT NULL,
  isbn        text UNIQUE CHECK (isbn ~ '^97[89][0-9]{10}$'),
  published   date,
  price       numeric(8, 2) NOT NULL CHECK (price >= 0),
  stock       integer NOT NULL DEFAULT 0,
  tags        text[] NOT NULL DEFAULT '{}',
  details     jsonb
);
CREATE INDEX books_author_idx ON books (author_id);

CREATE TABLE customers (
  customer_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name        text NOT NULL,
  email       text UNIQUE,                -- some customers never gave one
  city        text,
  joined_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
  order_id    integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  customer_id integer NOT NULL REFERENCES customers ON DELETE CASCADE,
  status      order_status NOT NULL DEFAULT 'pending',
  ordered_at  timestamptz NOT NULL,
  shipped_at  timestamptz,                -- NULL until shipped
  note        text
);
CREATE INDEX orders_customer_idx ON orders (customer_id);

CREATE TABLE order_items (
  order_id    integer NOT NULL REFERENCES orders ON DELETE CASCADE,
  book_id     integer NOT NULL REFERENCES books,
  quantity    integer NOT NULL CHECK (quantity > 0),
  unit_price  numeric(8, 2) NOT NULL,
  PRIMARY KEY (order_id, book_id)
);
CREATE INDEX order_items_book_idx ON order_items (book_id);

INSERT INTO authors (name, country, born, bio) VALUES
  ('Jane Austen', 'United Kingdom', '1775-12-16', 'Novelist of manners.'),
  ('Fyodor Dostoevsky', 'Russia', '1821-11-11', 'Фёдор Михайлович Достоевский.'),
  ('Gabriel García Márquez', 'Colombia', '1927-03-06', NULL),
  ('Haruki Murakami', 'Japan', '1949-01-12', '村上 春樹'),
  ('Chimamanda Ngozi Adichie', 'Nigeria', '1977-09-15', NULL),
  ('Astrid Lindgren', 'Sweden', '1907-11-14', 'Pippi Långstrump''s author.'),
  ('Naguib Mahfouz', 'Egypt', '1911-12-11', 'نجيب محفوظ'),
  ('Wisława Szymborska', 'Poland', '1923-07-02', 'Poet; Nobel 1996.'),
  ('Anonymous', NULL, NULL, NULL),
  ('Ursula K. Le Guin', 'United States', '1929-10-21', 'Earthsea & Hainish cycle.'),
  ('Jorge Luis Borges', 'Argentina', '1899-08-24', NULL),
  ('Lu Xun', 'China', '1881-09-25', '鲁迅');

-- 120 books; every 7th has no ISBN, every 11th no publication date.
INSERT INTO books (author_id, title, isbn, published, price, stock, tags, details)
SELECT 1 + (i % 12),
       (ARRAY['The', 'A', 'Notes on', 'Return to', 'Beyond', 'Letters from'])[1 + i % 6]
         || ' ' ||
       (ARRAY['Winter', 'the River', 'Kyōto', 'Łódź', 'the Lighthouse', 'Saudade',
              'the Archive', 'Midnight', 'Ñandú', 'the Garden'])[1 + (i * 7) % 10]
         || CASE WHEN i % 5 = 0 THEN ' ☕' ELSE '' END
         || ' #' || i,
       CASE WHEN i % 7 = 0 THEN NULL ELSE '978' || lpad((1000000000 + i * 7919)::text, 10, '0') END,
       CASE WHEN i % 11 = 0 THEN NULL ELSE date '1950-01-01' + (i * 137) % 27000 END,
       round((4.99 + random() * 45)::numeric, 2),
       (random() * 40)::int,
       string_to_array((ARRAY['fiction,classic', 'poetry', 'sci-fi,fantasy', 'essays,history',
                              'children,fiction', ''])[1 + i % 6], ','),
       CASE WHEN i % 3 = 0 THEN NULL
            ELSE jsonb_build_object('pages', 90 + (i * 31) % 800,
                                    'binding', (ARRAY['paperback', 'hardcover', 'ebook'])[1 + i % 3],
                                    'language', (ARRAY['en', 'ru', 'es', 'ja', 'sv'])[1 + i % 5])
       END
FROM generate_series(1, 120) AS i;

-- 200 customers; every 9th has no e-mail, every 13th no city.
INSERT INTO customers (name, email, city, joined_at)
SELECT (ARRAY['Ana', 'Björn', 'Chloé', 'Dmitri', 'Eun-ji', 'Farah', 'Günther', 'Hiroshi',
              'Ines', 'José', 'Kwame', 'Łucja', 'Mei', 'Noor', 'Oğuz', 'Priya'])[1 + i % 16]
         || ' ' ||
       (ARRAY['Smith', 'Müller', 'Nakamura', 'Okafor', 'Rossi', 'Svensson', 'Kowalski',
              'Haddad', 'O''Brien', 'Núñez'])[1 + (i * 3) % 10],
       CASE WHEN i % 9 = 0 THEN NULL ELSE 'customer' || i || '@example.com' END,
       CASE WHEN i % 13 = 0 THEN NULL
            ELSE (ARRAY['Lisboa', 'Malmö', 'Zürich', 'São Paulo', 'Kraków', 'Tōkyō',
                        'Lagos', 'Cairo', 'Montréal', 'Reykjavík'])[1 + i % 10] END,
       timestamptz '2021-01-01 09:00+00' + i * interval '3 days 5 hours'
FROM generate_series(1, 200) AS i;

-- 400 orders over 2023-2024.
INSERT INTO orders (customer_id, status, ordered_at, shipped_at, note)
SELECT 1 + (i * 37) % 200,
       s.status,
       o.at,
       CASE WHEN s.status IN ('shipped', 'delivered') THEN o.at + interval '2 days' END,
       CASE WHEN i % 25 = 0 THEN 'Gift wrap, please 🎁' WHEN i % 40 = 0 THEN '' END
FROM generate_series(1, 400) AS i,
     LATERAL (SELECT timestamptz '2023-01-01 00:00+00' + i * interval '1 day 19 hours 7 minutes' AS at) AS o,
     LATERAL (SELECT (ARRAY['delivered', 'delivered', 'delivered', 'shipped', 'paid', 'pending',
                            'cancelled'])[1 + (i * 13) % 7]::order_status AS status) AS s;

-- One to four distinct books per order, at the book's current price.
INSERT INTO order_items (order_id, book_id, quantity, unit_price)
SELECT o.order_id, b.book_id, 1 + (o.order_id + k) % 3, b.price
FROM orders AS o,
     generate_series(0, (o.order_id % 4)) AS k,
     LATERAL (SELECT book_id, price FROM books
              WHERE book_id = 1 + (o.order_id * 17 + k * 29) % 120) AS b;

CREATE VIEW order_totals AS
SELECT o.order_id,
       c.name AS customer,
       o.status,
       o.ordered_at,
       count(*) AS items,
       sum(oi.quantity * oi.unit_price) AS total
FROM orders AS o
JOIN customers AS c USING (customer_id)
JOIN order_items AS oi USING (order_id)
GROUP BY o.order_id, c.name, o.status, o.ordered_at;
COMMENT ON VIEW order_totals IS 'One row per order with its item count and total.';

CREATE VIEW bestsellers AS
SELECT b.book_id, b.title, a.name AS author, sum(oi.quantity) AS sold
FROM books AS b
JOIN authors AS a USING (author_id)
JOIN order_items AS oi USING (book_id)
JOIN orders AS o USING (order_id)
WHERE o.status <> 'cancelled'
GROUP BY b.book_id, b.title, a.name
ORDER BY sold DESC, b.book_id;

ANALYZE;
