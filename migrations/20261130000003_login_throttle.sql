-- Login throttling as one counter per keyed hash (an account, a client address), taken
-- atomically before a password is checked: of simultaneous attempts, no more than the
-- limit are ever checked. Replaces the list of failures.
DROP TABLE login_failures;
CREATE TABLE login_throttle (
    key_hash bytea PRIMARY KEY,
    -- Attempts counted since `since`; at the limit, refused until `since` + the lock-out.
    attempts integer NOT NULL,
    since timestamptz NOT NULL
);
CREATE INDEX login_throttle_since ON login_throttle (since);
