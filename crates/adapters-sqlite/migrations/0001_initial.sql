-- FlowMate's SQLite schema. Timestamps are INTEGER milliseconds since the Unix epoch; ids are
-- lowercase hyphenated UUID text. `*_key` columns hold the Unicode-lowercased form of a name,
-- computed by the adapter, for case-insensitive uniqueness and search.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX tenants_by_creation ON tenants (created_at, id);

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL,
    username_key  TEXT NOT NULL,
    firstname     TEXT,
    lastname      TEXT,
    status        TEXT NOT NULL,
    tenant        TEXT,
    permissions   TEXT NOT NULL,
    can_login     INTEGER NOT NULL,
    password_hash TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
-- Users who can log in: one per username, across all tenants.
CREATE UNIQUE INDEX users_login_username ON users (username_key) WHERE can_login = 1;
-- End users (impersonated): one per username within a tenant.
CREATE UNIQUE INDEX users_end_user_username ON users (coalesce(tenant, ''), username_key)
    WHERE can_login = 0;
CREATE INDEX users_by_creation ON users (created_at, id);
CREATE INDEX users_by_tenant ON users (tenant, created_at, id);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tokens_by_user ON tokens (user_id);

CREATE TABLE flows (
    id                 TEXT PRIMARY KEY NOT NULL,
    tenant             TEXT,
    name               TEXT NOT NULL,
    name_key           TEXT NOT NULL,
    description        TEXT,
    description_key    TEXT,
    flow_type          TEXT NOT NULL,
    cron               TEXT,
    status             TEXT NOT NULL,
    status_reason      TEXT,
    from_template      TEXT,
    owners             TEXT NOT NULL, -- JSON [{id, type}], in the order given
    doc                TEXT NOT NULL, -- JSON {graph, flowSettings}
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    status_changed_at  INTEGER NOT NULL,
    lifecycle_attempts INTEGER NOT NULL,
    revision           INTEGER NOT NULL
);
CREATE INDEX flows_by_tenant ON flows (tenant, created_at, id);
CREATE INDEX flows_by_creation ON flows (created_at, id);
CREATE INDEX flows_by_status_change ON flows (status, status_changed_at);
CREATE INDEX flows_by_template ON flows (from_template);

-- The owners of each flow, for the visibility filter, `filter[user]` and `list_owned_by`.
CREATE TABLE flow_owners (
    flow_id     TEXT NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    owner_id    TEXT NOT NULL,
    owner_type  TEXT NOT NULL,
    PRIMARY KEY (flow_id, owner_id, owner_type)
) WITHOUT ROWID;
CREATE INDEX flow_owners_by_owner ON flow_owners (owner_id, flow_id);

CREATE TABLE templates (
    id               TEXT PRIMARY KEY NOT NULL,
    tenant           TEXT,
    name             TEXT NOT NULL,
    name_key         TEXT NOT NULL,
    description      TEXT,
    description_key  TEXT,
    flow_type        TEXT NOT NULL,
    cron             TEXT,
    status           TEXT NOT NULL,
    tags             TEXT NOT NULL, -- JSON array of strings
    owners           TEXT NOT NULL, -- JSON [{id, type}]
    doc              TEXT NOT NULL, -- JSON {graph, flowSettings}
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    revision         INTEGER NOT NULL
);
CREATE INDEX templates_by_tenant ON templates (tenant, created_at, id);
CREATE INDEX templates_by_creation ON templates (created_at, id);

CREATE TABLE template_owners (
    template_id TEXT NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    owner_id    TEXT NOT NULL,
    owner_type  TEXT NOT NULL,
    PRIMARY KEY (template_id, owner_id, owner_type)
) WITHOUT ROWID;
CREATE INDEX template_owners_by_owner ON template_owners (owner_id, template_id);

-- The transactional outbox: events committed with the state change that caused them.
CREATE TABLE outbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id      TEXT NOT NULL,
    name          TEXT NOT NULL,
    key           TEXT,
    created_at    INTEGER NOT NULL,
    source        TEXT NOT NULL,
    payload       TEXT NOT NULL,
    claimed_until INTEGER
);

-- Events each consumer has handled, so a redelivered event has no second effect.
CREATE TABLE processed_events (
    consumer     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    processed_at INTEGER NOT NULL,
    PRIMARY KEY (consumer, event_id)
) WITHOUT ROWID;
