-- Empty statements: psql sends a lone ';' and comment-only statements; the
-- server answers them with an empty query.
SELECT 1 AS a;;
;
  ;  ;
/* only a comment */ ;
SELECT 2 AS b;
/* a comment at the very end */
