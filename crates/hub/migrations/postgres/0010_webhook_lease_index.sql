-- The idle delivery worker asks when the next pending delivery can be claimed
-- (Store::next_delivery_due): unleased rows through webhook_deliveries_due, the few leased
-- ones (claimed, in flight) through this partial index, so neither is a scan of the outbox.
CREATE INDEX webhook_deliveries_leased ON webhook_deliveries (lease_until_ms) WHERE lease_until_ms IS NOT NULL;
