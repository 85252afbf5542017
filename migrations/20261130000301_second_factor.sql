-- A second factor (TOTP, RFC 6238) per staff account. The secret is encrypted with the
-- application key, bound to the account's id; a copy of the database alone cannot make
-- codes. A row without `confirmed_at` is an enrolment begun but not yet confirmed.
CREATE TABLE second_factors (
    user_id uuid PRIMARY KEY REFERENCES users ON DELETE CASCADE,
    secret bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    confirmed_at timestamptz,
    -- The 30-second step of the last code accepted: a code is never accepted twice.
    last_step bigint
);

-- Single-use recovery codes, kept as keyed hashes (HMAC with the application key).
CREATE TABLE recovery_codes (
    user_id uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    code_hash bytea NOT NULL,
    used_at timestamptz,
    PRIMARY KEY (user_id, code_hash)
);
