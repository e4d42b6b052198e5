-- Executions (SPEC §7): one row per run of a flow. The trigger, input message, counters and
-- step records live in the JSON `doc`; what is filtered, sorted or claimed on has a column.
-- No foreign key to `flows`: an execution's record outlives the flow's deletion.
CREATE TABLE executions (
    id             TEXT PRIMARY KEY NOT NULL,
    flow_id        TEXT NOT NULL,
    tenant         TEXT,
    status         TEXT NOT NULL,
    trigger_type   TEXT NOT NULL,
    owners         TEXT NOT NULL, -- JSON [{id, type}], copied from the flow
    doc            TEXT NOT NULL, -- JSON {trigger, input, counters, steps}
    created_at     INTEGER NOT NULL,
    started_at     INTEGER,
    finished_at    INTEGER,
    lease_owner    TEXT,
    lease_until    INTEGER,
    lease_attempts INTEGER NOT NULL DEFAULT 0,
    revision       INTEGER NOT NULL
);
CREATE INDEX executions_by_flow ON executions (flow_id, created_at, id);
CREATE INDEX executions_by_tenant ON executions (tenant, created_at, id);
CREATE INDEX executions_by_status ON executions (status, created_at, id);
CREATE INDEX executions_by_creation ON executions (created_at, id);
CREATE INDEX executions_by_lease ON executions (lease_until) WHERE lease_until IS NOT NULL;

-- The owners of each execution, for the visibility filter.
CREATE TABLE execution_owners (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    owner_id     TEXT NOT NULL,
    owner_type   TEXT NOT NULL,
    PRIMARY KEY (execution_id, owner_id, owner_type)
) WITHOUT ROWID;
CREATE INDEX execution_owners_by_owner ON execution_owners (owner_id, execution_id);
