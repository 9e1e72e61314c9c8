-- trawl schema v9: how many rules of trawl's group in a host's robots.txt
-- could not be used (a pattern the matcher cannot compile) and were left
-- out while every other rule was obeyed. `trawl status` names such hosts.
ALTER TABLE hosts ADD COLUMN robots_unusable_rules INTEGER NOT NULL DEFAULT 0;
