-- The customer register (R-CUST-1 … R-CUST-13): companies, their people, consent,
-- communication, quarantine and erasure.

CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;

-- Lower case without accents, for search that ignores both. IMMUTABLE so it can be indexed.
CREATE FUNCTION search_text(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, $1)) $$;

-- The editable list of business areas (R-CUST-1).
CREATE TABLE business_areas (
    id uuid PRIMARY KEY,
    name_sv text NOT NULL,
    name_en text NOT NULL,
    position integer NOT NULL DEFAULT 0
);
INSERT INTO business_areas (id, name_sv, name_en, position) VALUES
    ('00000000-0000-4000-8000-000000000001', 'Tillverkare', 'Manufacturer', 1),
    ('00000000-0000-4000-8000-000000000002', 'Slutanvändare', 'End user', 2),
    ('00000000-0000-4000-8000-000000000003', 'Elbolag', 'Power utility', 3),
    ('00000000-0000-4000-8000-000000000004', 'EPC-entreprenör', 'EPC contractor', 4),
    ('00000000-0000-4000-8000-000000000005', 'Övrigt', 'Other', 5);

CREATE TABLE companies (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    address text NOT NULL DEFAULT '',
    website text NOT NULL DEFAULT '',
    email text NOT NULL DEFAULT '',
    phone text NOT NULL DEFAULT '',
    business_area_id uuid REFERENCES business_areas ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    search text GENERATED ALWAYS AS (search_text(name || ' ' || email || ' ' || phone)) STORED
);
CREATE INDEX companies_search ON companies USING gin (search gin_trgm_ops);
CREATE INDEX companies_by_name ON companies (lower(name), id);
CREATE INDEX companies_area ON companies (business_area_id);

CREATE TABLE contacts (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL REFERENCES companies ON DELETE CASCADE,
    name text NOT NULL,
    department text NOT NULL DEFAULT '',
    title text NOT NULL DEFAULT '',
    email text NOT NULL,
    phone text NOT NULL DEFAULT '',
    language text NOT NULL CHECK (language IN ('sv', 'fi', 'en')),
    source text NOT NULL CHECK (source IN ('fair', 'phone', 'email', 'web', 'import')),
    met_by uuid REFERENCES users ON DELETE SET NULL,
    status text NOT NULL CHECK (status IN ('quarantine', 'active', 'legacy')),
    newsletter boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    confirmed_at timestamptz,
    legacy_informed_at timestamptz,
    -- The latest of: added, confirmed, any logged communication. Drives the 5-year sweep.
    last_communication_at timestamptz NOT NULL DEFAULT now(),
    search text GENERATED ALWAYS AS (search_text(name || ' ' || email || ' ' || phone)) STORED
);
CREATE UNIQUE INDEX contacts_email_key ON contacts (lower(email));
CREATE INDEX contacts_search ON contacts USING gin (search gin_trgm_ops);
CREATE INDEX contacts_by_name ON contacts (lower(name), id);
CREATE INDEX contacts_company ON contacts (company_id);
CREATE INDEX contacts_last_communication ON contacts (last_communication_at) WHERE status <> 'quarantine';
CREATE INDEX contacts_in_quarantine ON contacts (created_at) WHERE status = 'quarantine';

-- Newsletter opt-in and opt-out, with their history (R-CUST-2, R-CUST-8).
CREATE TABLE newsletter_events (
    id bigserial PRIMARY KEY,
    contact_id uuid NOT NULL REFERENCES contacts ON DELETE CASCADE,
    subscribed boolean NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    how text NOT NULL
);
CREATE INDEX newsletter_events_contact ON newsletter_events (contact_id, at);

-- Calls, meetings, mails and fairs, with a short note.
CREATE TABLE communications (
    id uuid PRIMARY KEY,
    contact_id uuid NOT NULL REFERENCES contacts ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('call', 'meeting', 'email', 'fair', 'other')),
    happened_on date NOT NULL,
    note text NOT NULL DEFAULT '',
    user_id uuid REFERENCES users ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX communications_contact ON communications (contact_id, happened_on);

-- Consent records, GDPR Art. 7(1): whose, what purpose, the exact text and version shown,
-- when, how, from which link; and its withdrawal.
CREATE TABLE consents (
    id uuid PRIMARY KEY,
    contact_id uuid NOT NULL REFERENCES contacts ON DELETE CASCADE,
    purpose text NOT NULL CHECK (purpose IN ('storage', 'newsletter')),
    text_version text NOT NULL,
    language text NOT NULL,
    text text NOT NULL,
    given_at timestamptz NOT NULL DEFAULT now(),
    method text NOT NULL CHECK (method IN ('email_link', 'form', 'staff')),
    link_token_hash bytea,
    recorded_by uuid REFERENCES users ON DELETE SET NULL,
    withdrawn_at timestamptz
);
CREATE INDEX consents_contact ON consents (contact_id);

-- Links mailed to a person: confirm or refuse storage. Only hashes are kept. A row outlives
-- its person (contact_id set to NULL) until it expires, so a second click can say "done".
CREATE TABLE contact_tokens (
    token_hash bytea PRIMARY KEY,
    contact_id uuid REFERENCES contacts ON DELETE SET NULL,
    purpose text NOT NULL CHECK (purpose IN ('confirm', 'refuse')),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX contact_tokens_contact ON contact_tokens (contact_id);

-- Which quarantine reminders went out (by day), so a job run twice sends nothing twice.
CREATE TABLE quarantine_reminders (
    contact_id uuid NOT NULL REFERENCES contacts ON DELETE CASCADE,
    day integer NOT NULL,
    sent_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (contact_id, day)
);

-- Addresses of people who asked to be erased, as salted hashes only (R-CUST-6, R-CUST-10).
CREATE TABLE suppressed_emails (
    email_hash bytea PRIMARY KEY,
    erased_at timestamptz NOT NULL DEFAULT now()
);

-- One random salt per installation, for the suppression hashes.
CREATE TABLE installation (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    salt bytea NOT NULL
);
INSERT INTO installation (salt)
    VALUES (sha256(convert_to(gen_random_uuid()::text || clock_timestamp()::text || random()::text, 'UTF8')));

-- Stored copies of mails to a person go when the person goes.
ALTER TABLE mail_outbox ADD COLUMN contact_id uuid REFERENCES contacts ON DELETE CASCADE;
CREATE INDEX mail_outbox_contact ON mail_outbox (contact_id);
