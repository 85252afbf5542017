-- Mail is claimed for a short while before it is sent, so no row stays locked during an
-- SMTP conversation; a claim that runs out (a crashed sender) makes the mail due again.
ALTER TABLE mail_outbox DROP CONSTRAINT mail_outbox_status_check;
ALTER TABLE mail_outbox ADD CONSTRAINT mail_outbox_status_check
    CHECK (status IN ('queued', 'sending', 'sent', 'failed'));
ALTER TABLE mail_outbox ADD COLUMN claimed_until timestamptz;
DROP INDEX mail_outbox_due;
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE status IN ('queued', 'sending');
