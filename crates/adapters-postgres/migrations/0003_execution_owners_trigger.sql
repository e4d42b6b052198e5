-- The owners of an execution (the visibility filter's table) follow its `owners` column inside
-- the statement that writes the row, as on SQLite: an execution insert or save is then one
-- statement (one round trip, no explicit transaction) instead of a transaction with a delete
-- and one insert per owner.
CREATE FUNCTION execution_owners_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM execution_owners WHERE execution_id = NEW.id;
    END IF;
    INSERT INTO execution_owners (execution_id, owner_id, owner_type)
    SELECT NEW.id, owner ->> 'id', owner ->> 'type' FROM jsonb_array_elements(NEW.owners) AS owner
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER execution_owners_on_insert AFTER INSERT ON executions
    FOR EACH ROW EXECUTE FUNCTION execution_owners_follow();

CREATE TRIGGER execution_owners_on_update AFTER UPDATE OF owners ON executions
    FOR EACH ROW WHEN (NEW.owners IS DISTINCT FROM OLD.owners) EXECUTE FUNCTION execution_owners_follow();
