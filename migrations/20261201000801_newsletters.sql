-- Newsletters (R-CUST-3, R-CUST-8): the business areas a subscriber asked for, campaigns,
-- one delivery row per recipient of a campaign, and addresses that bounce.

-- The areas a subscriber chose when subscribing (none: every area).
CREATE TABLE newsletter_interests (
    contact_id uuid NOT NULL REFERENCES contacts ON DELETE CASCADE,
    business_area_id uuid NOT NULL REFERENCES business_areas ON DELETE CASCADE,
    PRIMARY KEY (contact_id, business_area_id)
);

-- Who recorded a newsletter event by hand (a phone opt-in, an unsubscribe by staff).
ALTER TABLE newsletter_events ADD COLUMN recorded_by uuid REFERENCES users ON DELETE SET NULL;

-- A person whose address a mail server refused outright: campaigns pass them over until
-- staff clear it.
CREATE TABLE mail_bounces (
    contact_id uuid PRIMARY KEY REFERENCES contacts ON DELETE CASCADE,
    since timestamptz NOT NULL DEFAULT now()
);

-- A paused mailing gives out no mail until resumed.
ALTER TABLE mail_batches ADD COLUMN paused boolean NOT NULL DEFAULT false;
CREATE INDEX mail_outbox_batch_status ON mail_outbox (batch_id, status) WHERE batch_id IS NOT NULL;

CREATE TABLE newsletter_campaigns (
    id uuid PRIMARY KEY,
    subject text NOT NULL,
    -- Markdown, as the administrator wrote it.
    body text NOT NULL,
    -- The audience: empty means every area, or every language.
    business_area_ids uuid[] NOT NULL DEFAULT '{}',
    languages text[] NOT NULL DEFAULT '{}',
    -- Mails a second; NULL: as fast as the mail server takes them.
    per_second integer CHECK (per_second > 0),
    status text NOT NULL DEFAULT 'draft'
        CHECK (status IN ('draft', 'scheduled', 'sending', 'cancelled')),
    send_at timestamptz,
    batch_id uuid REFERENCES mail_batches ON DELETE SET NULL,
    recipients integer,
    created_by uuid REFERENCES users ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz
);
CREATE INDEX newsletter_campaigns_due ON newsletter_campaigns (send_at) WHERE status = 'scheduled';

-- One row per recipient, made when sending starts: the primary key is what keeps a
-- campaign from reaching anyone twice. Its outcome is copied from the outbox, which
-- forgets delivered mail after 30 days.
CREATE TABLE newsletter_deliveries (
    campaign_id uuid NOT NULL REFERENCES newsletter_campaigns ON DELETE CASCADE,
    contact_id uuid NOT NULL REFERENCES contacts ON DELETE CASCADE,
    mail_id uuid REFERENCES mail_outbox ON DELETE SET NULL,
    status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed', 'stopped')),
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    PRIMARY KEY (campaign_id, contact_id)
);
CREATE INDEX newsletter_deliveries_contact ON newsletter_deliveries (contact_id);
CREATE INDEX newsletter_deliveries_mail ON newsletter_deliveries (mail_id);

CREATE FUNCTION newsletter_delivery_outcome() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE newsletter_deliveries SET status = NEW.status, sent_at = NEW.sent_at
    WHERE mail_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER newsletter_delivery_outcome
    AFTER UPDATE OF status ON mail_outbox
    FOR EACH ROW WHEN (NEW.batch_id IS NOT NULL AND NEW.status IN ('sent', 'failed'))
    EXECUTE FUNCTION newsletter_delivery_outcome();

-- When a mail of a mailing was handed to the mail server. Should the instance die before
-- recording the outcome, the mail is not handed over again: no one gets a mailing twice.
ALTER TABLE mail_outbox ADD COLUMN handed_at timestamptz;

-- The same test on the columns alone: a call with the whole row makes PostgreSQL build
-- the row, bodies and all, for every mail it looks at, which a mailing of thousands
-- cannot afford.
CREATE FUNCTION mail_claimable(status text, next_attempt_at timestamptz, claimed_pid integer, claimed_at timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT (status = 'queued' AND next_attempt_at <= now())
        OR (status = 'sending' AND NOT EXISTS (
                SELECT 1 FROM pg_stat_activity a
                WHERE a.pid = claimed_pid
                  AND (a.backend_start IS NULL OR a.backend_start <= claimed_at)))
$$;
