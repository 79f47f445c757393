-- The HTTP API's own data: signed provider heartbeats (written by the API server, not derived from
-- the chain, so rebuild() and rollbacks leave them alone), the last heartbeat of each provider, and
-- provider metadata fetched from the blob store; plus indexes for provider search.

-- Every accepted signed heartbeat (append-only). Two different signed statements of one provider for
-- one epoch are both kept: they are the evidence for equivocation slashing. The same statement signed
-- twice is stored once (heartbeats_statement).
CREATE TABLE heartbeats (
    provider      TEXT    NOT NULL,     -- checksummed address
    epoch         INTEGER NOT NULL,     -- timestamp // epoch seconds
    endpoint_hash TEXT    NOT NULL,     -- 0x-hex keccak256 of the endpoint string
    load          INTEGER NOT NULL,     -- basis points of capacity, 0..10000
    timestamp     INTEGER NOT NULL,     -- unix seconds, as signed
    signature     TEXT    NOT NULL,     -- 0x-hex, 65 bytes (r, s, v)
    received_at   REAL    NOT NULL,     -- this node's clock when it accepted the heartbeat
    PRIMARY KEY (provider, epoch, signature)
) WITHOUT ROWID;
CREATE UNIQUE INDEX heartbeats_statement ON heartbeats (provider, epoch, endpoint_hash, load, timestamp);

-- The latest heartbeat (by signed timestamp) of each provider.
CREATE TABLE liveness (
    provider      TEXT    PRIMARY KEY,
    epoch         INTEGER NOT NULL,
    endpoint_hash TEXT    NOT NULL,
    load          INTEGER NOT NULL,
    timestamp     INTEGER NOT NULL,
    received_at   REAL    NOT NULL
) WITHOUT ROWID;
CREATE INDEX liveness_timestamp ON liveness (timestamp, provider);

-- Provider metadata documents fetched from the blob store and checked against their signature.
-- A failed fetch keeps the cid with `error` set (endpoint etc. NULL) and is retried later.
CREATE TABLE provider_meta (
    address       TEXT PRIMARY KEY,     -- checksummed provider address
    cid           TEXT NOT NULL,        -- the metadata CID this row was fetched for
    endpoint      TEXT,
    endpoint_hash TEXT,                 -- 0x-hex keccak256 of endpoint (compare with heartbeats)
    region        TEXT,
    capacity_mbps INTEGER,
    fetched       REAL NOT NULL,        -- unix time of the (last) fetch attempt
    error         TEXT                  -- why the document was refused or could not be fetched
) WITHOUT ROWID;
CREATE INDEX provider_meta_region ON provider_meta (region, address);

-- Provider search: by stake (price already has stakers_role_price from 0001).
CREATE INDEX stakers_role_active ON stakers (role, active);
