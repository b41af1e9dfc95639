-- Blank lines inside statements, white space, and a last statement
-- without a semicolon.
SELECT

  1 AS spaced

;


SELECT 'blank

lines kept' AS in_string;
SELECT 2;   
   SELECT 3 AS indented;
SELECT 4 AS last

  
