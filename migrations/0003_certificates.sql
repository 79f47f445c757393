-- DeCA certificates as registered and revoked on chain (CertificateRegistry events). Revocation is
-- permanent, so a revoked row never becomes valid again.
CREATE TABLE certificates (
    cert_hash      TEXT PRIMARY KEY,         -- 0x sha256 of the DER
    owner          TEXT NOT NULL,
    key_hash       TEXT NOT NULL,
    pem_cid        TEXT NOT NULL,
    not_after      INTEGER NOT NULL,
    registered_block INTEGER NOT NULL,
    revoked        INTEGER NOT NULL DEFAULT 0,
    revoked_at     INTEGER,
    compromised_at INTEGER,
    reason         INTEGER,
    revoked_block  INTEGER
) WITHOUT ROWID;
CREATE INDEX certificates_owner ON certificates (owner);
