-- FlowNet fullnode ledger: raw logs (append-only, the source of truth), the chain cursor and the
-- unfinalized block window, and the projections derived from the raw logs by pure reducers.
-- Token amounts are TEXT holding zero-padded 30-digit decimals (every FlowNet amount fits in uint96,
-- 29 digits), so they compare and sort correctly as text and never overflow SQLite's 64-bit integers.

CREATE TABLE raw_logs (
    block_number INTEGER NOT NULL,
    log_index    INTEGER NOT NULL,
    block_hash   TEXT    NOT NULL,
    tx_hash      TEXT    NOT NULL,
    address      TEXT    NOT NULL,
    topics       TEXT    NOT NULL,   -- JSON array of 0x-hex topics
    data         TEXT    NOT NULL,   -- 0x-hex
    contract     TEXT,               -- FlowToken | Staking | BandwidthMarket (NULL: not ours)
    event        TEXT,               -- decoded event name (NULL: unknown topic)
    PRIMARY KEY (block_number, log_index)
) WITHOUT ROWID;

-- Hashes of recent blocks: the window in which a reorg is rolled back instead of refused.
CREATE TABLE blocks (
    number      INTEGER PRIMARY KEY,
    hash        TEXT NOT NULL,
    parent_hash TEXT NOT NULL
);

-- Where indexing stands: every block up to and including block_number is applied.
CREATE TABLE cursor (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    block_number INTEGER NOT NULL,
    block_hash   TEXT    NOT NULL
);

-- Previous values of projection rows changed by unfinalized blocks (NULL: the row did not exist).
CREATE TABLE undo (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    block_number INTEGER NOT NULL,
    tbl          TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    old          TEXT
);
CREATE INDEX undo_block ON undo (block_number);

-- Providers and verifiers (one row per staking account).
CREATE TABLE stakers (
    address      TEXT PRIMARY KEY,
    role         TEXT NOT NULL,          -- provider | verifier
    active       TEXT NOT NULL,
    locked       TEXT NOT NULL,
    thawing      TEXT NOT NULL,
    thaw_end     INTEGER NOT NULL,
    price        TEXT NOT NULL,          -- per GiB; 0: no offer
    metadata_cid TEXT,
    slashed      TEXT NOT NULL,
    updated_block INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX stakers_role_price ON stakers (role, price);

CREATE TABLE orders (
    order_id     TEXT PRIMARY KEY,
    nonce        INTEGER NOT NULL,
    client       TEXT NOT NULL,
    provider     TEXT NOT NULL,
    deposit      TEXT NOT NULL,
    price        TEXT NOT NULL,
    expiry       INTEGER NOT NULL,
    locked_stake TEXT NOT NULL,
    paid         TEXT NOT NULL,
    paid_bytes   TEXT NOT NULL,
    refunded     TEXT NOT NULL,
    status       TEXT NOT NULL,          -- open | closed
    cooperative  INTEGER,                -- closed: 1 co-signed close, 0 reclaim after expiry
    opened_block INTEGER NOT NULL,
    closed_block INTEGER
) WITHOUT ROWID;
CREATE INDEX orders_client ON orders (client);
CREATE INDEX orders_provider ON orders (provider);

-- Every redeemed receipt (append-only).
CREATE TABLE receipts (
    block_number     INTEGER NOT NULL,
    log_index        INTEGER NOT NULL,
    order_id         TEXT NOT NULL,
    provider         TEXT NOT NULL,
    cumulative_bytes TEXT NOT NULL,
    cumulative_amount TEXT NOT NULL,
    payout           TEXT NOT NULL,
    PRIMARY KEY (block_number, log_index)
) WITHOUT ROWID;
CREATE INDEX receipts_order ON receipts (order_id);

-- Double-entry journal: every token movement moves `amount` from `debit` to `credit` (append-only).
CREATE TABLE journal (
    block_number INTEGER NOT NULL,
    log_index    INTEGER NOT NULL,
    seq          INTEGER NOT NULL,       -- entries of one event
    kind         TEXT NOT NULL,          -- stake | thaw | withdraw | escrow | payment | refund | slash | transfer
    debit        TEXT NOT NULL,          -- account the tokens leave
    credit       TEXT NOT NULL,          -- account the tokens reach
    amount       TEXT NOT NULL,
    PRIMARY KEY (block_number, log_index, seq)
) WITHOUT ROWID;
CREATE INDEX journal_debit ON journal (debit);
CREATE INDEX journal_credit ON journal (credit);

-- Balance of every ledger account (may be negative for `external`, the world outside FlowNet).
CREATE TABLE balances (
    account TEXT PRIMARY KEY,
    balance TEXT NOT NULL                -- signed decimal text
) WITHOUT ROWID;

-- Facts about this database: the deployment it indexes and the lowest block that can be rolled back.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
