-- Requests of data subjects (GDPR Art. 15-21) and their deadlines (Art. 12(3)), and the
-- log of personal-data breaches (Art. 33(5)).

CREATE TABLE subject_requests (
    id uuid PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('access', 'rectification', 'erasure', 'objection')),
    -- How it arrived: through the links of the self-service page, or logged by staff.
    channel text NOT NULL CHECK (channel IN ('self_service', 'email', 'phone', 'letter')),
    -- The subject's address; emptied when the subject is erased.
    email text,
    received_on date NOT NULL,
    due_on date NOT NULL,
    -- Extended by up to two months (Art. 12(3)), with the reason told to the subject.
    extended_to date,
    extension_reason text,
    -- What the subject asked for (a correction, what to object to); emptied on erasure.
    details text NOT NULL DEFAULT '',
    state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done', 'refused')),
    outcome text NOT NULL DEFAULT '',
    handled_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    closed_at timestamptz,
    CHECK (extended_to IS NULL OR (extended_to > due_on AND extension_reason IS NOT NULL))
);

CREATE INDEX subject_requests_open ON subject_requests (due_on) WHERE state = 'open';
CREATE INDEX subject_requests_email ON subject_requests (lower(email));

CREATE TABLE breaches (
    id uuid PRIMARY KEY,
    what text NOT NULL,
    discovered_at timestamptz NOT NULL,
    registers text[] NOT NULL DEFAULT '{}',
    people integer,
    consequences text NOT NULL DEFAULT '',
    measures text NOT NULL DEFAULT '',
    authority_told_at timestamptz,
    -- Why the authority was not told (no risk to people, Art. 33(1)), when it was not.
    authority_not_needed text,
    people_told_at timestamptz,
    closed_at timestamptz,
    recorded_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
