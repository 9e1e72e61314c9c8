-- Host leases (used by crawls on PostgreSQL that several processes work
-- together): the process that holds an origin, a random token of its
-- run, and when the lease runs out unless renewed (epoch ms).
ALTER TABLE hosts ADD COLUMN lease_owner INTEGER;
ALTER TABLE hosts ADD COLUMN lease_token INTEGER;
ALTER TABLE hosts ADD COLUMN lease_expires_at INTEGER;
