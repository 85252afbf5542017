-- The audit log no longer makes writers wait for one another: a row is written unchained
-- in the transaction of the change it records, and the sealer appends committed rows to
-- the hash chain (seq, prev_hash, hash) in the order it finds them. The one UPDATE the
-- database allows is that sealing, with the row's content unchanged.
ALTER TABLE audit_log
    ALTER COLUMN prev_hash DROP NOT NULL,
    ALTER COLUMN hash DROP NOT NULL,
    ADD COLUMN seq bigint,
    -- How many, for an event that stands for several (failed logins before a lock-out).
    ADD COLUMN count bigint;

ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_or_delete;
UPDATE audit_log SET seq = ordered.n
    FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM audit_log) AS ordered
    WHERE audit_log.id = ordered.id;
ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update_or_delete;

CREATE UNIQUE INDEX audit_log_seq ON audit_log (seq);
CREATE INDEX audit_log_unsealed ON audit_log (id) WHERE seq IS NULL;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_sealed_whole
    CHECK ((seq IS NULL) = (hash IS NULL) AND (seq IS NULL) = (prev_hash IS NULL));

CREATE OR REPLACE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL
       AND (NEW.id, NEW.at, NEW.actor_kind, NEW.actor_id, NEW.action, NEW.entity,
            NEW.entity_id, NEW.fields, NEW.count)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.at, OLD.actor_kind, OLD.actor_id, OLD.action, OLD.entity,
            OLD.entity_id, OLD.fields, OLD.count) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: % is refused', TG_OP;
END
$$;
