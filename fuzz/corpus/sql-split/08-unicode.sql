-- Non-ASCII: identifiers, strings, comments (日本語; コメント), U& escapes.
CREATE TABLE "ключ;таблица" (имя text, "значение;" int);
INSERT INTO "ключ;таблица" VALUES ('Ёж; 🐘', 1), ('naïve', 2);
SELECT имя, "значение;" FROM "ключ;таблица" ORDER BY 2;
SELECT U&"\0438\043C\044F" FROM "ключ;таблица" WHERE "значение;" = 2;
SELECT 'π ≈ 3.14159' AS "π;", length('🐘🐘') AS elephants; /* ✓; */
SELECT $é$ dollar ; $é$ AS tag_é;
