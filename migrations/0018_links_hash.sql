-- A fingerprint of a page's stored links (xxh3-64 of their targets,
-- anchors, nofollow flags and kinds, in order; see
-- `store::records::links_hash`). A recrawl that stores a page again
-- compares it with the new links' to tell that they are the same (the
-- usual edit) without reading them. NULL for pages stored before it.
ALTER TABLE pages ADD COLUMN links_hash INTEGER;
