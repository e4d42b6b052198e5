-- The owners of an execution (the visibility filter's table) follow its `owners` JSON column
-- inside the statement that writes the row: an execution insert or save is one statement
-- instead of three (delete, insert owners), which matters on the single writer.
CREATE TRIGGER execution_owners_on_insert AFTER INSERT ON executions
BEGIN
    INSERT OR IGNORE INTO execution_owners (execution_id, owner_id, owner_type)
    SELECT NEW.id, json_extract(value, '$.id'), json_extract(value, '$.type') FROM json_each(NEW.owners);
END;

CREATE TRIGGER execution_owners_on_update AFTER UPDATE OF owners ON executions
WHEN NEW.owners IS NOT OLD.owners
BEGIN
    DELETE FROM execution_owners WHERE execution_id = NEW.id;
    INSERT OR IGNORE INTO execution_owners (execution_id, owner_id, owner_type)
    SELECT NEW.id, json_extract(value, '$.id'), json_extract(value, '$.type') FROM json_each(NEW.owners);
END;
