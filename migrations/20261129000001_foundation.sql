-- Staff accounts. The e-mail is unique whatever its case.
CREATE TABLE users (
    id uuid PRIMARY KEY,
    email text NOT NULL,
    name text NOT NULL,
    role text NOT NULL CHECK (role IN ('admin', 'employee', 'ceo')),
    chat_operator boolean NOT NULL DEFAULT false,
    mailbox boolean NOT NULL DEFAULT false,
    password_hash text,
    language text CHECK (language IN ('sv', 'en', 'fi')),
    created_at timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz,
    last_login_at timestamptz
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- One-time links mailed to a user (the invitation to set a password). Only a hash is kept.
CREATE TABLE user_tokens (
    token_hash bytea PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    purpose text NOT NULL CHECK (purpose IN ('invitation')),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX user_tokens_user ON user_tokens (user_id);

-- Failed logins, per hashed account or address, for throttling.
CREATE TABLE login_failures (
    key_hash bytea NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_key ON login_failures (key_hash, at);

-- Sessions, in the shape tower-sessions-sqlx-store expects.
CREATE SCHEMA tower_sessions;
CREATE TABLE tower_sessions.session (
    id text PRIMARY KEY NOT NULL,
    data bytea NOT NULL,
    expiry_date timestamptz NOT NULL
);
CREATE INDEX session_expiry ON tower_sessions.session (expiry_date);

-- The audit log: append-only and hash-chained. No personal data values, only who, what,
-- which entity and which field names, so that erasure never has to touch it.
CREATE TABLE audit_log (
    id bigint PRIMARY KEY,
    at timestamptz NOT NULL,
    actor_kind text NOT NULL CHECK (actor_kind IN ('user', 'system', 'subject', 'anonymous')),
    actor_id text,
    action text NOT NULL,
    entity text NOT NULL,
    entity_id text,
    fields text[] NOT NULL DEFAULT '{}',
    prev_hash bytea NOT NULL,
    hash bytea NOT NULL
);
CREATE SEQUENCE audit_log_id_seq AS bigint;
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_actor ON audit_log (actor_id, id);
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id, id);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is refused', TG_OP;
END
$$;
CREATE TRIGGER audit_log_no_update_or_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

-- Mail waiting to leave, and what happened to it.
CREATE TABLE mail_outbox (
    id uuid PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    recipient text NOT NULL,
    language text NOT NULL,
    kind text NOT NULL,
    subject text NOT NULL,
    body_text text NOT NULL,
    body_html text NOT NULL,
    headers jsonb NOT NULL DEFAULT '[]',
    status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    sent_at timestamptz
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE status = 'queued';
CREATE INDEX mail_outbox_status ON mail_outbox (status, created_at);

-- Wakes the delivery workers of every instance when mail is queued.
CREATE FUNCTION mail_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mail_outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER mail_outbox_queued
    AFTER INSERT OR UPDATE OF status, next_attempt_at ON mail_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION mail_outbox_notify();
