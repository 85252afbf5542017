-- The website chat (R-CHAT-1 … R-CHAT-7): conversations, their messages, and which
-- operators have the console open (on any instance).
CREATE TABLE chat_conversations (
    id uuid PRIMARY KEY,
    -- SHA-256 of the token the visitor's browser keeps in its cookie to come back.
    token_hash bytea NOT NULL UNIQUE,
    -- Keyed hash of the client address: caps the open chats of one client.
    client_hash bytea NOT NULL,
    status text NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'open', 'closed')),
    name text NOT NULL DEFAULT '',
    company text NOT NULL DEFAULT '',
    email text NOT NULL DEFAULT '',
    phone text NOT NULL DEFAULT '',
    -- The page the visitor is on (R-CHAT-7).
    page text NOT NULL DEFAULT '',
    language text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_activity_at timestamptz NOT NULL DEFAULT now(),
    closed_at timestamptz
);
CREATE INDEX chat_conversations_live ON chat_conversations (created_at) WHERE status <> 'closed';
CREATE INDEX chat_conversations_client ON chat_conversations (client_hash) WHERE status <> 'closed';
CREATE INDEX chat_conversations_closed ON chat_conversations (closed_at);
CREATE INDEX chat_conversations_email ON chat_conversations (lower(email));

CREATE TABLE chat_messages (
    id bigserial PRIMARY KEY,
    conversation_id uuid NOT NULL REFERENCES chat_conversations ON DELETE CASCADE,
    sender text NOT NULL CHECK (sender IN ('visitor', 'operator')),
    operator_id uuid REFERENCES users (id) ON DELETE SET NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_messages_conversation ON chat_messages (conversation_id, id);

-- One row per open operator console; a console that vanished without saying so (a
-- killed instance) stops counting when its heartbeat is older than two minutes.
CREATE TABLE chat_presence (
    connection_id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    seen_at timestamptz NOT NULL DEFAULT now()
);
