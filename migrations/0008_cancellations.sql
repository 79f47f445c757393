-- Cancelled orders and client refusals (issue 11, finding 6): a provider cancels an order it never
-- accepted (OrderCancelled: the whole deposit back to the client, status closed, cancelled = 1) and
-- refuses clients until a time (ClientRefused). Both come from the reducers, so rebuild() and
-- rollbacks keep them exact.

ALTER TABLE orders ADD COLUMN cancelled INTEGER NOT NULL DEFAULT 0;   -- 1: cancelled by its provider

-- The latest refusal of each (provider, client); a refused_until not after now means none.
CREATE TABLE refusals (
    refusal_key   TEXT PRIMARY KEY,          -- "<provider>:<client>"
    provider      TEXT    NOT NULL,
    client        TEXT    NOT NULL,
    refused_until TEXT    NOT NULL,          -- unix seconds as 20-digit text: a uint64 (2^64-1 is "forever")
                                             -- does not fit SQLite's signed 64-bit INTEGER
    updated_block INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX refusals_client ON refusals (client);
