-- The node holding a delivery's lease: a restarted node releases its own leases at once
-- instead of waiting for them to run out.
ALTER TABLE webhook_deliveries ADD COLUMN lease_owner TEXT;
