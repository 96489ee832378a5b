-- Sharing the learning across schools: the cluster's staffroom and library rooms, subject rooms,
-- and co-authored programmes of learning with their items, history and uses in classes.

-- Rooms the bot keeps once per cluster, created on first need.
CREATE TABLE cluster_rooms (
    kind       TEXT PRIMARY KEY CHECK (kind IN ('staffroom space', 'staffroom', 'library')),
    room_id    TEXT NOT NULL UNIQUE,
    alias      TEXT,                       -- its canonical alias, when it has one (#ako-library:…)
    created_at TEXT NOT NULL
);

-- A subject room in the staffroom space ("Physics"), and the staff who asked to be in it.
CREATE TABLE subject_rooms (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    room_id    TEXT NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE subject_members (
    subject_id INTEGER NOT NULL REFERENCES subject_rooms(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    added_at   TEXT NOT NULL,
    PRIMARY KEY (subject_id, user_id)
);
CREATE INDEX subject_members_by_user ON subject_members(user_id);

-- A programme of learning (shown as P<id>), independent of any class. version goes up by one
-- with every change; programme_changes holds one row per version.
CREATE TABLE programmes (
    id                INTEGER PRIMARY KEY,
    title             TEXT NOT NULL,
    room_id           TEXT UNIQUE,             -- its own room, set right after the room is made
    version           INTEGER NOT NULL DEFAULT 1,
    last_item         INTEGER NOT NULL DEFAULT 0,  -- the last item number given out (I<n>), never reused
    created_by        TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    published_at      TEXT,                    -- listed in the library since, NULL: not listed
    published_by      TEXT
);

CREATE TABLE programme_authors (
    programme_id INTEGER NOT NULL REFERENCES programmes(id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL,
    added_by     TEXT NOT NULL,
    added_at     TEXT NOT NULL,
    PRIMARY KEY (programme_id, user_id)
);
CREATE INDEX programme_authors_by_user ON programme_authors(user_id);

-- Items in order (position 1, 2, …). A removed item keeps its row (removed_at) so the history
-- and the classes that used it still make sense.
CREATE TABLE programme_items (
    id           INTEGER PRIMARY KEY,
    programme_id INTEGER NOT NULL REFERENCES programmes(id) ON DELETE CASCADE,
    number       INTEGER NOT NULL,             -- shown as I<number>
    position     INTEGER,                      -- NULL once removed
    kind         TEXT NOT NULL CHECK (kind IN ('assignment', 'resource')),
    title        TEXT NOT NULL,
    body         TEXT NOT NULL DEFAULT '',     -- markdown as typed
    points       REAL,                         -- assignments only
    due          TEXT,                         -- assignments: an offset from the start, 'week 2 fri 17:00'
    publish      TEXT,                         -- assignments: posted at this offset, NULL: when used
    source       TEXT,                         -- 'PHYS12 A3' when imported from a class
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    removed_at   TEXT,
    UNIQUE (programme_id, number)
);

CREATE TABLE programme_changes (
    programme_id INTEGER NOT NULL REFERENCES programmes(id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    summary      TEXT NOT NULL,
    at           TEXT NOT NULL,
    PRIMARY KEY (programme_id, version)
);

-- A programme put into a class (!programme use): which version, from which start date, and the
-- assignment each item became.
CREATE TABLE programme_uses (
    id           INTEGER PRIMARY KEY,
    programme_id INTEGER NOT NULL REFERENCES programmes(id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    class_id     INTEGER NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
    start_date   TEXT NOT NULL,                -- ISO date, in the class's zone
    timezone     TEXT NOT NULL,
    used_by      TEXT NOT NULL,
    used_at      TEXT NOT NULL,
    UNIQUE (programme_id, class_id)
);

CREATE TABLE programme_use_items (
    use_id        INTEGER NOT NULL REFERENCES programme_uses(id) ON DELETE CASCADE,
    item_number   INTEGER NOT NULL,
    assignment_id INTEGER REFERENCES assignments(id) ON DELETE SET NULL,
    PRIMARY KEY (use_id, item_number)
);
