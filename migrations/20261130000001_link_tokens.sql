-- One table for every link mailed to someone: an invitation, a request to confirm or
-- refuse storage, an e-mail change, and the links of the registers to come. Only the
-- token's hash is kept, so a copy of the database holds no working link.
CREATE TABLE link_tokens (
    token_hash bytea PRIMARY KEY,
    purpose text NOT NULL,
    -- The account or person the link acts on.
    subject_id uuid NOT NULL,
    -- What the link carries besides (the new address of an e-mail change).
    payload text,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX link_tokens_subject ON link_tokens (subject_id);
CREATE INDEX link_tokens_expiry ON link_tokens (expires_at);

INSERT INTO link_tokens (token_hash, purpose, subject_id, created_at, expires_at, used_at)
    SELECT token_hash, 'invitation', user_id, created_at, expires_at, used_at FROM user_tokens;
INSERT INTO link_tokens (token_hash, purpose, subject_id, created_at, expires_at, used_at)
    SELECT token_hash, 'consent.' || purpose, contact_id, created_at, expires_at, used_at
    FROM contact_tokens WHERE contact_id IS NOT NULL;
DROP TABLE user_tokens;
DROP TABLE contact_tokens;
