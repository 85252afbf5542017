-- Mail of no mailing is found through an index of its own: a password reset need not
-- read past a paced mailing of many thousands to be sent.
DROP INDEX mail_outbox_due;
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at)
    WHERE status IN ('queued', 'sending') AND batch_id IS NULL;

-- Takes the given mails for sending by the calling session, in the statement that chose
-- them (and locked them with SKIP LOCKED), and returns those it is to send. A mail of a
-- mailing is marked handed to the mail server now, as it goes: should the instance die
-- before recording the outcome, no one gets it twice. A mail an instance had already
-- handed over when it died is marked failed instead of being sent again.
CREATE FUNCTION mail_take(ids uuid[])
RETURNS TABLE (id uuid, recipient text, subject text, body_text text, body_html text,
               headers jsonb, attempts integer, has_attachments boolean)
-- PL/pgSQL keeps the statement's plan for the session; an SQL function would plan it
-- again at every call.
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH taken AS (
        UPDATE mail_outbox o
        SET status = CASE WHEN o.handed_at IS NULL THEN 'sending' ELSE 'failed' END,
            claimed_pid = CASE WHEN o.handed_at IS NULL THEN pg_backend_pid() END,
            claimed_at = CASE WHEN o.handed_at IS NULL THEN now() END,
            handed_at = CASE WHEN o.batch_id IS NOT NULL THEN coalesce(o.handed_at, now()) END,
            last_error = CASE WHEN o.handed_at IS NULL THEN o.last_error
                ELSE 'the sending instance stopped while handing it to the mail server; not sent again' END
        WHERE o.id = ANY(ids)
        RETURNING o.id, o.recipient, o.subject, o.body_text, o.body_html, o.headers, o.attempts,
                  o.status
    )
    SELECT t.id, t.recipient, t.subject, t.body_text, t.body_html, t.headers, t.attempts,
           EXISTS (SELECT 1 FROM mail_attachments a WHERE a.mail_id = t.id)
    FROM taken t
    WHERE t.status = 'sending';
END
$$;

-- Wakes the delivery workers only when mail becomes due to be sent: a statement that
-- claims mail or records an outcome, even one that changes no row, must not wake the
-- very worker that ran it, or an idle instance never rests.
DROP TRIGGER mail_outbox_queued ON mail_outbox;
CREATE TRIGGER mail_outbox_queued
    AFTER INSERT OR UPDATE OF status, next_attempt_at ON mail_outbox
    FOR EACH ROW WHEN (NEW.status = 'queued')
    EXECUTE FUNCTION mail_outbox_notify();
-- A mailing resumed has mail to send again.
CREATE TRIGGER mail_batches_resumed
    AFTER UPDATE OF paused ON mail_batches
    FOR EACH ROW WHEN (OLD.paused AND NOT NEW.paused)
    EXECUTE FUNCTION mail_outbox_notify();

-- A mail's bodies are kept beside its row (TOAST) however short: each step of sending
-- writes a new version of the row, and it then copies a pointer, not kilobytes of text.
ALTER TABLE mail_outbox SET (toast_tuple_target = 128);

-- The test of whether a mail may be claimed, in a form PostgreSQL writes into the query
-- that calls it: a call of a function for each mail looked at costs more than the look.
-- Only a mail claimed by a session asks after that session.
CREATE FUNCTION mail_claim_lapsed(claimed_pid integer, claimed_at timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT NOT EXISTS (
        SELECT 1 FROM pg_stat_activity a
        WHERE a.pid = claimed_pid
          AND (a.backend_start IS NULL OR a.backend_start <= claimed_at))
$$;
CREATE OR REPLACE FUNCTION mail_claimable(status text, next_attempt_at timestamptz, claimed_pid integer, claimed_at timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT (status = 'queued' AND next_attempt_at <= now())
        OR (status = 'sending' AND mail_claim_lapsed(claimed_pid, claimed_at))
$$;

-- Mail not (yet) delivered, for the outbox page, the start page and /metrics: delivered
-- mail, nearly all of it, stays out of the index and costs it nothing when it is recorded.
DROP INDEX mail_outbox_status;
CREATE INDEX mail_outbox_undelivered ON mail_outbox (status, created_at) WHERE status <> 'sent';
