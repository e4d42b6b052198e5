-- Webhook idempotency (SPEC §6) and external components (SPEC §7).

-- The caller's idempotency key (or a cron due time). At most one execution of a flow holds a
-- key; an execution older than the idempotency window gives its key up to a new one.
ALTER TABLE executions ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX executions_idempotency ON executions (flow_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Components registered with `POST /components`; `name` is what nodes give as `componentId`.
CREATE TABLE components (
    name        TEXT PRIMARY KEY NOT NULL,
    tenant      TEXT,
    owners      TEXT NOT NULL, -- JSON [{id, type}], in the order given
    doc         TEXT NOT NULL, -- JSON {url, functions}
    created_at  INTEGER NOT NULL
);
CREATE INDEX components_by_tenant ON components (tenant, name);

-- The owners of each component, for the visibility filter.
CREATE TABLE component_owners (
    component_name TEXT NOT NULL REFERENCES components (name) ON DELETE CASCADE,
    owner_id       TEXT NOT NULL,
    owner_type     TEXT NOT NULL,
    PRIMARY KEY (component_name, owner_id, owner_type)
) WITHOUT ROWID;
CREATE INDEX component_owners_by_owner ON component_owners (owner_id, component_name);
