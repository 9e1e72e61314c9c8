-- trawl schema v7: which markup a link came from: NULL for `<a href>` (by
-- far the most), else `area`, `frame`, `iframe` or `refresh` (the target
-- of a `<meta http-equiv=refresh>`).
ALTER TABLE links ADD COLUMN kind TEXT;
