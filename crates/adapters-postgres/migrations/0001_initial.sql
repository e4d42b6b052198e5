-- FlowMate's PostgreSQL schema (the same tables as the SQLite adapter's). Timestamps are
-- timestamptz truncated to milliseconds by the adapter; ids are lowercase hyphenated UUID text in
-- the "C" collation (ordered like SQLite's binary text); documents are jsonb. `*_key` columns
-- hold the Unicode-lowercased form of a name, computed by the adapter (as in SQLite, whatever
-- the database locale), for case-insensitive uniqueness and search.

CREATE TABLE tenants (
    id          TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT NOT NULL,
    name_key    TEXT COLLATE "C" NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT tenants_name_unique UNIQUE (name_key)
);
CREATE INDEX tenants_by_creation ON tenants (created_at, id);

CREATE TABLE users (
    id            TEXT COLLATE "C" PRIMARY KEY,
    username      TEXT NOT NULL,
    username_key  TEXT COLLATE "C" NOT NULL,
    firstname     TEXT,
    lastname      TEXT,
    status        TEXT NOT NULL,
    tenant        TEXT COLLATE "C",
    permissions   JSONB NOT NULL,
    can_login     BOOLEAN NOT NULL,
    password_hash TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
-- Users who can log in: one per username, across all tenants.
CREATE UNIQUE INDEX users_login_username ON users (username_key) WHERE can_login;
-- End users (impersonated): one per username within a tenant.
CREATE UNIQUE INDEX users_end_user_username ON users (coalesce(tenant, ''), username_key)
    WHERE NOT can_login;
CREATE INDEX users_by_creation ON users (created_at, id);
CREATE INDEX users_by_tenant ON users (tenant, created_at, id);

CREATE TABLE tokens (
    id          TEXT COLLATE "C" PRIMARY KEY,
    user_id     TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    revoked     INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT tokens_hash_unique UNIQUE (hash)
);
CREATE INDEX tokens_by_user ON tokens (user_id);

CREATE TABLE flows (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    tenant             TEXT COLLATE "C",
    name               TEXT NOT NULL,
    name_key           TEXT COLLATE "C" NOT NULL,
    description        TEXT,
    description_key    TEXT COLLATE "C",
    flow_type          TEXT NOT NULL,
    cron               TEXT,
    status             TEXT NOT NULL,
    status_reason      TEXT,
    from_template      TEXT COLLATE "C",
    owners             JSONB NOT NULL, -- [{id, type}], in the order given
    doc                JSONB NOT NULL, -- {graph, flowSettings}
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    status_changed_at  TIMESTAMPTZ NOT NULL,
    lifecycle_attempts BIGINT NOT NULL,
    revision           BIGINT NOT NULL
);
CREATE INDEX flows_by_tenant ON flows (tenant, created_at, id);
CREATE INDEX flows_by_creation ON flows (created_at, id);
CREATE INDEX flows_by_status_change ON flows (status, status_changed_at);
CREATE INDEX flows_by_template ON flows (from_template);

-- The owners of each flow, for the visibility filter, `filter[user]` and `list_owned_by`.
CREATE TABLE flow_owners (
    flow_id     TEXT COLLATE "C" NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    owner_id    TEXT COLLATE "C" NOT NULL,
    owner_type  TEXT NOT NULL,
    PRIMARY KEY (flow_id, owner_id, owner_type)
);
CREATE INDEX flow_owners_by_owner ON flow_owners (owner_id, flow_id);

CREATE TABLE templates (
    id               TEXT COLLATE "C" PRIMARY KEY,
    tenant           TEXT COLLATE "C",
    name             TEXT NOT NULL,
    name_key         TEXT COLLATE "C" NOT NULL,
    description      TEXT,
    description_key  TEXT COLLATE "C",
    flow_type        TEXT NOT NULL,
    cron             TEXT,
    status           TEXT NOT NULL,
    tags             JSONB NOT NULL, -- array of strings
    owners           JSONB NOT NULL, -- [{id, type}]
    doc              JSONB NOT NULL, -- {graph, flowSettings}
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    revision         BIGINT NOT NULL
);
CREATE INDEX templates_by_tenant ON templates (tenant, created_at, id);
CREATE INDEX templates_by_creation ON templates (created_at, id);

CREATE TABLE template_owners (
    template_id TEXT COLLATE "C" NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    owner_id    TEXT COLLATE "C" NOT NULL,
    owner_type  TEXT NOT NULL,
    PRIMARY KEY (template_id, owner_id, owner_type)
);
CREATE INDEX template_owners_by_owner ON template_owners (owner_id, template_id);

-- The transactional outbox: events committed with the state change that caused them.
-- `claimed_until`: a relay's claim, released when it expires (the relay died).
CREATE TABLE outbox (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      TEXT COLLATE "C" NOT NULL,
    name          TEXT NOT NULL,
    key           TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    source        TEXT NOT NULL,
    payload       JSONB NOT NULL,
    claimed_until TIMESTAMPTZ
);

-- Events each consumer has handled, so a redelivered event has no second effect.
CREATE TABLE processed_events (
    consumer     TEXT NOT NULL,
    event_id     TEXT COLLATE "C" NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (consumer, event_id)
);

-- Executions (SPEC §7): one row per run of a flow. The trigger, input message, counters and
-- step records live in the jsonb `doc`; what is filtered, sorted or claimed on has a column.
-- No foreign key to `flows`: an execution's record outlives the flow's deletion.
CREATE TABLE executions (
    id              TEXT COLLATE "C" PRIMARY KEY,
    flow_id         TEXT COLLATE "C" NOT NULL,
    tenant          TEXT COLLATE "C",
    status          TEXT NOT NULL,
    trigger_type    TEXT NOT NULL,
    owners          JSONB NOT NULL, -- [{id, type}], copied from the flow
    doc             JSONB NOT NULL, -- {trigger, input, counters, steps, error}
    created_at      TIMESTAMPTZ NOT NULL,
    started_at      TIMESTAMPTZ,
    finished_at     TIMESTAMPTZ,
    lease_owner     TEXT,
    lease_until     TIMESTAMPTZ,
    lease_attempts  BIGINT NOT NULL DEFAULT 0,
    -- The caller's idempotency key (or a cron due time). At most one execution of a flow holds
    -- a key; an execution older than the idempotency window gives its key up to a new one.
    idempotency_key TEXT,
    revision        BIGINT NOT NULL
);
CREATE INDEX executions_by_flow ON executions (flow_id, created_at, id);
CREATE INDEX executions_by_tenant ON executions (tenant, created_at, id);
CREATE INDEX executions_by_status ON executions (status, created_at, id);
CREATE INDEX executions_by_creation ON executions (created_at, id);
CREATE INDEX executions_by_lease ON executions (lease_until) WHERE lease_until IS NOT NULL;
CREATE UNIQUE INDEX executions_idempotency ON executions (flow_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- The owners of each execution, for the visibility filter.
CREATE TABLE execution_owners (
    execution_id TEXT COLLATE "C" NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    owner_id     TEXT COLLATE "C" NOT NULL,
    owner_type   TEXT NOT NULL,
    PRIMARY KEY (execution_id, owner_id, owner_type)
);
CREATE INDEX execution_owners_by_owner ON execution_owners (owner_id, execution_id);

-- Components registered with `POST /components`; `name` is what nodes give as `componentId`.
CREATE TABLE components (
    name        TEXT COLLATE "C" PRIMARY KEY,
    tenant      TEXT COLLATE "C",
    owners      JSONB NOT NULL, -- [{id, type}], in the order given
    doc         JSONB NOT NULL, -- {url, functions}
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX components_by_tenant ON components (tenant, name);

-- The owners of each component, for the visibility filter.
CREATE TABLE component_owners (
    component_name TEXT COLLATE "C" NOT NULL REFERENCES components (name) ON DELETE CASCADE,
    owner_id       TEXT COLLATE "C" NOT NULL,
    owner_type     TEXT NOT NULL,
    PRIMARY KEY (component_name, owner_id, owner_type)
);
CREATE INDEX component_owners_by_owner ON component_owners (owner_id, component_name);
