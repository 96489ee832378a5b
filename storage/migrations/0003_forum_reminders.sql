-- Forum topics and their replies, reminders, the ledger of everything the scheduler has
-- handled, and each user's own settings (time zone, digest).

-- A forum topic: a thread root the bot posted in the class room (!topic). The root's event id
-- is not known when the topic is recorded (sending goes through the outbox), so the topic keeps
-- the outbox transaction id of its root; the outbox holds the event id once it is sent.
CREATE TABLE topics (
    id          INTEGER PRIMARY KEY,
    class_id    INTEGER NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
    number      INTEGER NOT NULL,            -- shown as T<number>
    title       TEXT NOT NULL,
    body        TEXT NOT NULL DEFAULT '',    -- markdown as typed
    author      TEXT NOT NULL,
    room_id     TEXT NOT NULL,               -- the class room
    root_txn_id TEXT NOT NULL UNIQUE,        -- outbox txn id of the thread root
    created_at  TEXT NOT NULL,
    closed_at   TEXT,
    closed_by   TEXT,
    pinned_at   TEXT,
    UNIQUE (class_id, number)
);

-- Every thread reply counted, once (the event id is the key).
CREATE TABLE topic_replies (
    event_id   TEXT PRIMARY KEY,
    topic_id   INTEGER NOT NULL REFERENCES topics(id) ON DELETE CASCADE,
    sender     TEXT NOT NULL,
    by_teacher INTEGER NOT NULL DEFAULT 0,   -- a teacher of the class at the time
    sent_at    TEXT NOT NULL
);
CREATE INDEX topic_replies_by_topic ON topic_replies(topic_id, sent_at);

-- A thread reply names its root by event id: find the topic through the outbox.
CREATE INDEX outbox_by_event ON outbox(event_id) WHERE event_id IS NOT NULL;

-- !remind (class_id set: posted in the class room) and !remindme (class_id NULL: the user's DM).
-- next_at is the next time it falls due; NULL once it has run (one-off) or was cancelled.
CREATE TABLE reminders (
    id           INTEGER PRIMARY KEY,
    class_id     INTEGER REFERENCES classes(id) ON DELETE CASCADE,
    created_by   TEXT NOT NULL,
    room_id      TEXT NOT NULL,
    text         TEXT NOT NULL,
    next_at      TEXT,
    weekdays     TEXT,                       -- recurring: '0,2,4' (Monday = 0), NULL: once
    local_time   TEXT,                       -- recurring: 'HH:MM' on the wall clock of its zone
    timezone     TEXT NOT NULL,              -- the zone it was set in (a class's reminders follow the class)
    created_at   TEXT NOT NULL,
    cancelled_at TEXT,
    cancelled_by TEXT
);
CREATE INDEX reminders_pending ON reminders(next_at) WHERE next_at IS NOT NULL;
CREATE INDEX reminders_by_class ON reminders(class_id) WHERE next_at IS NOT NULL;

-- What the scheduler has handled: one row per thing that fell due (a reminder's slot, an
-- assignment's reminder at one offset, a digest), written in the same transaction as the
-- messages it queued. The key is also the base of those messages' transaction ids, so a
-- slot is never sent twice.
CREATE TABLE schedule_ledger (
    key     TEXT PRIMARY KEY,
    due_at  TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('sent', 'late', 'dropped', 'empty')),
    done_at TEXT NOT NULL
);

-- Each user's own settings.
CREATE TABLE user_settings (
    user_id          TEXT PRIMARY KEY,
    timezone         TEXT,                   -- NULL: the class's zone, or the bot's default
    digest           TEXT NOT NULL DEFAULT 'off' CHECK (digest IN ('off', 'daily', 'weekly')),
    digest_since     TEXT,                   -- what the next digest covers starts here
    digest_last_slot TEXT,                   -- the last digest time handled (sent, empty or dropped)
    updated_at       TEXT NOT NULL
);
CREATE INDEX user_settings_digest ON user_settings(digest) WHERE digest <> 'off';
