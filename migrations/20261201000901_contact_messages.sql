-- Messages left through the public contact form, or through the chat widget when no
-- operator was online (R-FORM-1 … R-FORM-5). Deleted by the contact-retention job.
CREATE TABLE contact_messages (
    id uuid PRIMARY KEY,
    email text NOT NULL,
    name text NOT NULL DEFAULT '',
    company text NOT NULL DEFAULT '',
    phone text NOT NULL DEFAULT '',
    message text NOT NULL,
    -- 'form' or 'chat': where it was left.
    source text NOT NULL DEFAULT 'form',
    -- The language of the page it was written on.
    language text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    handled_at timestamptz,
    handled_by uuid REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX contact_messages_created ON contact_messages (created_at);
CREATE INDEX contact_messages_email ON contact_messages (lower(email));
