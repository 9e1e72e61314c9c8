-- Host leases: the process (processes.id) that holds an origin, a random
-- token of its run, and when the lease runs out unless renewed (epoch
-- ms). Only the holder fetches from the origin and leases its URLs.
ALTER TABLE hosts ADD COLUMN lease_owner BIGINT;
ALTER TABLE hosts ADD COLUMN lease_token BIGINT;
ALTER TABLE hosts ADD COLUMN lease_expires_at BIGINT;

-- The queued URLs of an origin (claims look for origins with work).
CREATE INDEX urls_queued_origin ON urls (origin, depth, id) WHERE state = 'queued';
-- In-flight URLs (how much work is leased anywhere; an origin's leftovers
-- when a dead process's lease is taken over).
CREATE INDEX urls_leased_origin ON urls (origin) WHERE state = 'leased';
