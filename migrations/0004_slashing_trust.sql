-- SlashingManager and TrustRegistry projections (derived from the chain by the indexer's reducers, so
-- rollbacks and rebuild() keep them exact), the API's verifier attestations (written by the API
-- server, like heartbeats: rebuild() and rollbacks leave them alone), and the network trust score in
-- provider search.

-- One row per dispute (DisputeOpened, then DisputeRebutted, DisputeExecuted or DisputeSuperseded).
CREATE TABLE disputes (
    id             INTEGER PRIMARY KEY,      -- the manager's dispute id (1, 2, ...)
    provider       TEXT    NOT NULL,
    epoch          INTEGER NOT NULL,
    kind           INTEGER NOT NULL,         -- 0 unreachable, 1 latency, 2 throughput, 3 metering
    evidence_cid   TEXT    NOT NULL,
    verifiers      TEXT    NOT NULL,         -- JSON array of the accusing verifiers, in signature order
    opener         TEXT    NOT NULL,
    challenge_ends INTEGER NOT NULL,         -- unix time: rebuttable before, executable from
    status         TEXT    NOT NULL,         -- open | rebutted | executed | superseded
    slashed        TEXT    NOT NULL,         -- executed: taken from the provider
    reward         TEXT    NOT NULL,         -- executed: paid to the verifiers in total
    burned         TEXT    NOT NULL,         -- executed: burned of the slash; rebutted: verifier penalties burned
    penalties      TEXT,                     -- rebutted: JSON array of each verifier's penalty (decimal strings)
    rebut_order_id TEXT,                     -- rebutted: the order whose service proof rebutted it
    bytes_served   TEXT,                     -- rebutted: the bytes the client signed for
    executor       TEXT,                     -- executed: who executed it
    opened_block   INTEGER NOT NULL,
    closed_block   INTEGER                   -- when it left `open`
);
CREATE INDEX disputes_provider ON disputes (provider, id);
CREATE INDEX disputes_status ON disputes (status, id);

-- Every slash of a provider (append-only): route equivocation (EquivocationSlashed) or dispute
-- (DisputeExecuted). amount = reward + burned.
CREATE TABLE slashes (
    block_number INTEGER NOT NULL,
    log_index    INTEGER NOT NULL,
    provider     TEXT    NOT NULL,
    epoch        INTEGER NOT NULL,
    route        TEXT    NOT NULL,           -- equivocation | dispute
    dispute_id   INTEGER,                    -- route dispute
    reporter     TEXT    NOT NULL,           -- equivocation: the reporter; dispute: the executor
    amount       TEXT    NOT NULL,
    reward       TEXT    NOT NULL,
    burned       TEXT    NOT NULL,
    evidence_cid TEXT    NOT NULL,
    PRIMARY KEY (block_number, log_index)
) WITHOUT ROWID;
CREATE INDEX slashes_provider ON slashes (provider, block_number);

-- Current trust score per (subject, domain); unscored subjects have no row (the contract's neutral 500).
CREATE TABLE scores (
    score_key     TEXT PRIMARY KEY,          -- "<subject>:<domain>"
    subject       TEXT    NOT NULL,
    domain        INTEGER NOT NULL,          -- 0 network, 1 app, 2 OS, 3 package
    score         INTEGER NOT NULL,          -- 0..1000
    updated_block INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX scores_subject ON scores (subject, domain);

-- Every ScoreChanged (append-only): who changed which score, from what to what, and why.
CREATE TABLE score_history (
    block_number INTEGER NOT NULL,
    log_index    INTEGER NOT NULL,
    subject      TEXT    NOT NULL,
    domain       INTEGER NOT NULL,
    scorer       TEXT    NOT NULL,           -- a scorer of the domain, or the SlashingManager on a slash
    old_score    INTEGER NOT NULL,
    new_score    INTEGER NOT NULL,
    reason_cid   TEXT    NOT NULL,
    PRIMARY KEY (block_number, log_index)
) WITHOUT ROWID;
CREATE INDEX score_history_subject ON score_history (subject, domain, block_number, log_index);

-- Scorer roles per domain (ScorerSet); allowed 0 rows stay as the record of a removal.
CREATE TABLE scorers (
    scorer_key    TEXT PRIMARY KEY,          -- "<domain>:<scorer>"
    domain        INTEGER NOT NULL,
    scorer        TEXT    NOT NULL,
    allowed       INTEGER NOT NULL,
    updated_block INTEGER NOT NULL
) WITHOUT ROWID;

-- The authority of each domain and the pending one of a two-step transfer.
CREATE TABLE trust_authorities (
    domain        INTEGER PRIMARY KEY,
    authority     TEXT,                      -- NULL until an AuthorityTransferred names one
    pending       TEXT,
    updated_block INTEGER NOT NULL
);

-- Verifier attestations gathered by the API (POST /attestations), so verifiers can collect a quorum
-- of signatures for openDispute. The same (provider, epoch, kind, evidence, verifier) is stored once.
CREATE TABLE attestations (
    provider     TEXT    NOT NULL,
    epoch        INTEGER NOT NULL,
    kind         INTEGER NOT NULL,
    evidence_cid TEXT    NOT NULL,
    verifier     TEXT    NOT NULL,
    signature    TEXT    NOT NULL,           -- 0x-hex, 65 bytes (r, s, v)
    received_at  REAL    NOT NULL,
    PRIMARY KEY (provider, epoch, kind, evidence_cid, verifier)
) WITHOUT ROWID;
CREATE INDEX attestations_epoch ON attestations (epoch, provider);

-- Provider search filters on the network (domain 0) trust score: unscored providers count as 500.
ALTER TABLE provider_search ADD COLUMN trust INTEGER NOT NULL DEFAULT 500;
CREATE INDEX provider_search_trust ON provider_search (trust, address, price, active, region, last_seen);

CREATE TRIGGER scores_search_insert AFTER INSERT ON scores WHEN NEW.domain = 0 BEGIN
    UPDATE provider_search SET trust = NEW.score WHERE address = NEW.subject;
END;

CREATE TRIGGER scores_search_update AFTER UPDATE ON scores WHEN NEW.domain = 0 BEGIN
    UPDATE provider_search SET trust = NEW.score WHERE address = NEW.subject;
END;

CREATE TRIGGER scores_search_delete AFTER DELETE ON scores WHEN OLD.domain = 0 BEGIN
    UPDATE provider_search SET trust = 500 WHERE address = OLD.subject;
END;

-- A provider row created after its score (a subject scored before it staked, or a rebuild) takes it.
CREATE TRIGGER provider_search_trust_insert AFTER INSERT ON provider_search BEGIN
    UPDATE provider_search
    SET trust = COALESCE((SELECT score FROM scores WHERE subject = NEW.address AND domain = 0), 500)
    WHERE address = NEW.address;
END;
