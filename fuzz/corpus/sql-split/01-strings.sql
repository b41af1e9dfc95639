-- Strings: '' doubling, backslashes (literal in standard strings), E'…'
-- escapes, N'…', B'…', X'…', U&'…' and quoted identifiers holding ';'.
SELECT 'plain; with '' doubled', 'back\slash\';
SELECT E'escaped \' quote; and \\ backslash', e'tab\there';
SELECT E'x''y\';z' AS "it's;", 'a' AS "quoted "" ident;";
SELECT N'national;', B'0101', X'1F', b'1' | b'0';
SELECT U&'d\0061t\+000061;' AS U&"col\0041;", U&'!0041;' UESCAPE '!';
SELECT 'two' 
  'lines?' AS not_joined_here, length('--not a comment');
SELECT '/* not a comment */', 'semi;colon', '$$not$$ dollar';
SELECT 'multi
line;
string' AS s;
