-- CertificateRegistry keeps one record per (owner, certHash) (issue 11, finding 4): a wallet that
-- registers a hash another wallet registered writes its own record, and revoking it revokes only that
-- record. The certificates table is keyed the same way; the events are unchanged, so the rows, and the
-- undo records of the unfinalized window, carry over (a hash had one owner under the old registry).
CREATE TABLE certificates_by_owner (
    cert_key       TEXT PRIMARY KEY,         -- "<owner>:<cert_hash>"
    cert_hash      TEXT NOT NULL,            -- 0x sha256 of the DER
    owner          TEXT NOT NULL,            -- the wallet that registered it (checksummed)
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

INSERT INTO certificates_by_owner
SELECT owner || ':' || cert_hash, cert_hash, owner, key_hash, pem_cid, not_after, registered_block,
       revoked, revoked_at, compromised_at, reason, revoked_block
FROM certificates;

-- Undo records name a row by its key and hold its previous value: re-key both.
UPDATE undo
SET key = (SELECT owner FROM certificates c WHERE c.cert_hash = undo.key) || ':' || key,
    old = CASE WHEN old IS NULL THEN NULL
               ELSE json_set(old, '$.cert_key', json_extract(old, '$.owner') || ':' || json_extract(old, '$.cert_hash'))
          END
WHERE tbl = 'certificates';

DROP TABLE certificates;
ALTER TABLE certificates_by_owner RENAME TO certificates;
CREATE INDEX certificates_owner ON certificates (owner);
CREATE INDEX certificates_hash ON certificates (cert_hash);
