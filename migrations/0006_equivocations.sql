-- Equivocation evidence kept by the API server (like heartbeats: written by the API, not derived from
-- the chain, so rebuild() and rollbacks leave it alone).

-- One proven equivocation per (provider, epoch): the first two valid signed heartbeats of the provider
-- for the epoch that name different endpoints, each with every field SlashingManager.slashEquivocation
-- needs. One pair is enough (the chain slashes a (provider, epoch) once); it is kept even when the
-- second heartbeat is refused as one too many for its epoch, so later heartbeats never bury it.
CREATE TABLE equivocations (
    provider      TEXT    NOT NULL,     -- checksummed address
    epoch         INTEGER NOT NULL,
    endpoint_a    TEXT    NOT NULL,     -- 0x-hex keccak256 of the endpoint of the earlier heartbeat
    load_a        INTEGER NOT NULL,
    timestamp_a   INTEGER NOT NULL,
    signature_a   TEXT    NOT NULL,     -- 0x-hex, 65 bytes (r, s, v)
    endpoint_b    TEXT    NOT NULL,     -- a different endpoint hash, signed for the same epoch
    load_b        INTEGER NOT NULL,
    timestamp_b   INTEGER NOT NULL,
    signature_b   TEXT    NOT NULL,
    received_at   REAL    NOT NULL,     -- this node's clock when it received the second heartbeat
    PRIMARY KEY (provider, epoch),
    CHECK (endpoint_a != endpoint_b)
) WITHOUT ROWID;
CREATE INDEX equivocations_epoch ON equivocations (epoch);

-- Equivocations already in the stored heartbeats (the earliest heartbeat of the epoch and the earliest
-- one naming another endpoint; INSERT OR IGNORE keeps the first row of each (provider, epoch)).
INSERT OR IGNORE INTO equivocations
SELECT a.provider, a.epoch, a.endpoint_hash, a.load, a.timestamp, a.signature,
       b.endpoint_hash, b.load, b.timestamp, b.signature, MAX(a.received_at, b.received_at)
FROM heartbeats a
JOIN heartbeats b ON b.provider = a.provider AND b.epoch = a.epoch AND b.endpoint_hash != a.endpoint_hash
WHERE (a.received_at, a.timestamp, a.signature) < (b.received_at, b.timestamp, b.signature)
ORDER BY a.provider, a.epoch, a.received_at, a.timestamp, a.signature, b.received_at, b.timestamp, b.signature;
