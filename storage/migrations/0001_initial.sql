-- Ako's first schema: the sync position, schools and staff, classes, their rooms and members,
-- and the outbox of messages to send.

CREATE TABLE sync_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Every event the bot has acted on (or decided to ignore), so that a replayed sync is harmless.
CREATE TABLE processed_events (
    event_id     TEXT PRIMARY KEY,
    room_id      TEXT NOT NULL,
    processed_at TEXT NOT NULL
);

-- Rooms the bot is joined to; events before the bot's own join are never acted on.
CREATE TABLE joined_rooms (
    room_id   TEXT PRIMARY KEY,
    joined_at TEXT NOT NULL
);

CREATE TABLE schools (
    server   TEXT PRIMARY KEY,     -- homeserver name, e.g. school-a.example
    name     TEXT NOT NULL,
    added_by TEXT NOT NULL,
    added_at TEXT NOT NULL
);

CREATE TABLE school_admins (
    server   TEXT NOT NULL REFERENCES schools(server) ON DELETE CASCADE,
    user_id  TEXT NOT NULL,
    added_by TEXT NOT NULL,
    added_at TEXT NOT NULL,
    PRIMARY KEY (server, user_id)
);
CREATE INDEX school_admins_by_user ON school_admins(user_id);

CREATE TABLE staff (
    user_id  TEXT PRIMARY KEY,
    server   TEXT NOT NULL REFERENCES schools(server) ON DELETE CASCADE,
    added_by TEXT NOT NULL,
    added_at TEXT NOT NULL
);

CREATE TABLE classes (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    code          TEXT NOT NULL UNIQUE,
    code_enabled  INTEGER NOT NULL DEFAULT 1,
    timezone      TEXT NOT NULL,
    server        TEXT NOT NULL,          -- school of the creating teacher
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    archived_at   TEXT
);

CREATE TABLE class_members (
    class_id INTEGER NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL,
    role     TEXT NOT NULL CHECK (role IN ('teacher', 'learner')),
    added_by TEXT NOT NULL,
    added_at TEXT NOT NULL,
    PRIMARY KEY (class_id, user_id)
);
CREATE INDEX class_members_by_user ON class_members(user_id);

-- Rooms the bot manages. kind: space | class | staff | work | dm.
-- owner: the learner of a work room, the user of a DM.
CREATE TABLE rooms (
    room_id  TEXT PRIMARY KEY,
    kind     TEXT NOT NULL CHECK (kind IN ('space', 'class', 'staff', 'work', 'dm')),
    class_id INTEGER REFERENCES classes(id) ON DELETE CASCADE,
    owner    TEXT,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX rooms_one_work_room ON rooms(class_id, owner) WHERE kind = 'work';
CREATE UNIQUE INDEX rooms_one_of_each ON rooms(class_id, kind) WHERE kind IN ('space', 'class', 'staff');
CREATE INDEX rooms_dm_by_owner ON rooms(owner) WHERE kind = 'dm';

-- Messages to send. The transaction id is fixed when the row is written, so a resend after a
-- crash is deduplicated by the homeserver.
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY,
    txn_id     TEXT NOT NULL UNIQUE,
    room_id    TEXT NOT NULL,
    event_type TEXT NOT NULL,
    content    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    sent_at    TEXT,
    event_id   TEXT,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX outbox_unsent ON outbox(id) WHERE sent_at IS NULL;
