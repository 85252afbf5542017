-- A batch is one mailing (a campaign, a consent mailing): its mails are paced together at
-- `per_second` (NULL: as fast as possible). `next_send_at` is the pacing state, advanced
-- by each claim, so every instance keeps to the same rate.
CREATE TABLE mail_batches (
    id uuid PRIMARY KEY,
    kind text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    per_second integer CHECK (per_second > 0),
    next_send_at timestamptz NOT NULL DEFAULT now()
);

-- A claim belongs to the database session of the instance that made it (its backend pid
-- and the time of the claim): when the instance dies, its session ends and the claim
-- lapses at once, instead of after a fixed time.
ALTER TABLE mail_outbox
    DROP COLUMN claimed_until,
    ADD COLUMN claimed_pid integer,
    ADD COLUMN claimed_at timestamptz,
    ADD COLUMN sent_by text,
    ADD COLUMN batch_id uuid REFERENCES mail_batches ON DELETE CASCADE;
CREATE INDEX mail_outbox_batch ON mail_outbox (batch_id, next_attempt_at)
    WHERE status IN ('queued', 'sending');

-- A mail another instance may take: due in the queue, or claimed by a session that has
-- ended. A pid reused by a later session has a later backend_start; where the role may not
-- see backend_start, the pid alone decides.
CREATE FUNCTION mail_claimable(m mail_outbox) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT (m.status = 'queued' AND m.next_attempt_at <= now())
        OR (m.status = 'sending' AND NOT EXISTS (
                SELECT 1 FROM pg_stat_activity a
                WHERE a.pid = m.claimed_pid
                  AND (a.backend_start IS NULL OR a.backend_start <= m.claimed_at)))
$$;

-- Files and the like, sent with the mail; they hold personal data and go once it is sent.
CREATE TABLE mail_attachments (
    mail_id uuid NOT NULL REFERENCES mail_outbox ON DELETE CASCADE,
    position integer NOT NULL,
    filename text NOT NULL,
    content_type text NOT NULL,
    content bytea NOT NULL,
    PRIMARY KEY (mail_id, position)
);

-- Tells the delivery workers, after the deleting transaction commits, that stored mails
-- went (an erasure, the retention job): they remove the `.eml` copies of them.
CREATE FUNCTION mail_outbox_deleted_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mail_outbox_deleted', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER mail_outbox_deleted
    AFTER DELETE ON mail_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION mail_outbox_deleted_notify();
