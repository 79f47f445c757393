-- The HTTP API's own data: signed provider heartbeats (written by the API server, not derived from
-- the chain, so rebuild() and rollbacks leave them alone), the last heartbeat of each provider, and
-- provider metadata fetched from the blob store; plus a trigger-maintained table for provider search.

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

-- Provider search: one compact row per provider with every filter and sort key, kept in step with
-- stakers, provider_meta and liveness by the triggers below (inside the writer's own transaction, so
-- it is never out of date, also through the indexer's rollbacks and rebuilds). Every index covers
-- every column, so a search reads one index in the order of its sort, checking filters in the index,
-- and stops after the page; only the page's rows are then joined for their details.
CREATE TABLE provider_search (
    address   TEXT PRIMARY KEY,
    price     TEXT NOT NULL,            -- zero-padded, as stakers.price
    active    TEXT NOT NULL,            -- zero-padded, as stakers.active
    region    TEXT,                     -- provider_meta.region (NULL: unknown)
    last_seen INTEGER NOT NULL          -- liveness.timestamp (0: never)
) WITHOUT ROWID;
CREATE INDEX provider_search_price ON provider_search (price, address, active, region, last_seen);
CREATE INDEX provider_search_active ON provider_search (active, address, price, region, last_seen);
CREATE INDEX provider_search_seen ON provider_search (last_seen, address, price, active, region);
CREATE INDEX provider_search_seen_first ON provider_search (last_seen = 0, last_seen, address, price, active, region);
CREATE INDEX provider_search_region_price ON provider_search (region, price, address, active, last_seen);
CREATE INDEX provider_search_region_active ON provider_search (region, active, address, price, last_seen);
CREATE INDEX provider_search_region_seen ON provider_search (region, last_seen, address, price, active);
CREATE INDEX provider_search_region_seen_first
    ON provider_search (region, last_seen = 0, last_seen, address, price, active);

INSERT INTO provider_search (address, price, active, region, last_seen)
SELECT s.address, s.price, s.active, m.region, COALESCE(l.timestamp, 0)
FROM stakers s LEFT JOIN provider_meta m ON m.address = s.address LEFT JOIN liveness l ON l.provider = s.address
WHERE s.role = 'provider';

-- INSERT OR REPLACE on stakers (the indexer's writes) fires the insert trigger only.
CREATE TRIGGER stakers_search_insert AFTER INSERT ON stakers BEGIN
    DELETE FROM provider_search WHERE address = NEW.address AND NEW.role != 'provider';
    INSERT INTO provider_search (address, price, active, region, last_seen)
    SELECT NEW.address, NEW.price, NEW.active,
           (SELECT region FROM provider_meta WHERE address = NEW.address),
           COALESCE((SELECT timestamp FROM liveness WHERE provider = NEW.address), 0)
    WHERE NEW.role = 'provider'
    ON CONFLICT (address) DO UPDATE SET price = excluded.price, active = excluded.active;
END;

CREATE TRIGGER stakers_search_update AFTER UPDATE ON stakers BEGIN
    DELETE FROM provider_search WHERE address = OLD.address AND (OLD.address != NEW.address OR NEW.role != 'provider');
    INSERT INTO provider_search (address, price, active, region, last_seen)
    SELECT NEW.address, NEW.price, NEW.active,
           (SELECT region FROM provider_meta WHERE address = NEW.address),
           COALESCE((SELECT timestamp FROM liveness WHERE provider = NEW.address), 0)
    WHERE NEW.role = 'provider'
    ON CONFLICT (address) DO UPDATE SET price = excluded.price, active = excluded.active;
END;

CREATE TRIGGER stakers_search_delete AFTER DELETE ON stakers BEGIN
    DELETE FROM provider_search WHERE address = OLD.address;
END;

CREATE TRIGGER provider_meta_search_insert AFTER INSERT ON provider_meta BEGIN
    UPDATE provider_search SET region = NEW.region WHERE address = NEW.address;
END;

CREATE TRIGGER provider_meta_search_update AFTER UPDATE ON provider_meta BEGIN
    UPDATE provider_search SET region = NULL WHERE address = OLD.address AND OLD.address != NEW.address;
    UPDATE provider_search SET region = NEW.region WHERE address = NEW.address;
END;

CREATE TRIGGER provider_meta_search_delete AFTER DELETE ON provider_meta BEGIN
    UPDATE provider_search SET region = NULL WHERE address = OLD.address;
END;

CREATE TRIGGER liveness_search_insert AFTER INSERT ON liveness BEGIN
    UPDATE provider_search SET last_seen = NEW.timestamp WHERE address = NEW.provider;
END;

CREATE TRIGGER liveness_search_update AFTER UPDATE ON liveness BEGIN
    UPDATE provider_search SET last_seen = NEW.timestamp WHERE address = NEW.provider;
END;

CREATE TRIGGER liveness_search_delete AFTER DELETE ON liveness BEGIN
    UPDATE provider_search SET last_seen = 0 WHERE address = OLD.provider;
END;
