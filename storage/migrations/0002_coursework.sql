-- Coursework: assignments (with per-class short ids A1, A2, …), personal extensions,
-- submissions (every version kept), grades and returns, and actions waiting for !confirm.

-- The last short-id number given out in each class. A deleted assignment's number is never
-- reused, so "A3" always means the same piece of work in a class's history.
CREATE TABLE assignment_counters (
    class_id    INTEGER PRIMARY KEY REFERENCES classes(id) ON DELETE CASCADE,
    last_number INTEGER NOT NULL
);

CREATE TABLE assignments (
    id           INTEGER PRIMARY KEY,
    class_id     INTEGER NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
    number       INTEGER NOT NULL,           -- shown as A<number>
    title        TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',   -- markdown as the teacher typed it
    points       REAL NOT NULL,
    due_at       TEXT NOT NULL,
    cutoff_at    TEXT,                       -- no submissions after this, NULL: none
    publish_at   TEXT,                       -- posted by the scheduler at this time, NULL: at once
    published_at TEXT,                       -- when it was posted in the class room
    closed_at    TEXT,
    deleted_at   TEXT,
    copied_from  INTEGER REFERENCES assignments(id) ON DELETE SET NULL,
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (class_id, number)                -- also serves "the assignments of a class"
);
-- The scheduler's question: what should be posted by now?
CREATE INDEX assignments_to_publish ON assignments(publish_at)
    WHERE published_at IS NULL AND deleted_at IS NULL;
-- Reminders and calendars: what is due when.
CREATE INDEX assignments_by_due ON assignments(due_at) WHERE deleted_at IS NULL;

-- A personal due date for one learner (!extend).
CREATE TABLE extensions (
    assignment_id INTEGER NOT NULL REFERENCES assignments(id) ON DELETE CASCADE,
    learner       TEXT NOT NULL,
    due_at        TEXT NOT NULL,
    granted_by    TEXT NOT NULL,
    granted_at    TEXT NOT NULL,
    PRIMARY KEY (assignment_id, learner)
);

-- Every !submit is a new version; nothing is overwritten. received_at is the bot's clock.
CREATE TABLE submissions (
    id              INTEGER PRIMARY KEY,
    assignment_id   INTEGER NOT NULL REFERENCES assignments(id) ON DELETE CASCADE,
    learner         TEXT NOT NULL,
    version         INTEGER NOT NULL,
    text            TEXT NOT NULL DEFAULT '',
    file_url        TEXT,                    -- mxc://…
    file_name       TEXT,
    file_mimetype   TEXT,
    file_size       INTEGER,                 -- bytes, as the sender's client declared
    source_event_id TEXT NOT NULL,           -- the !submit command
    reply_event_id  TEXT,                    -- the message or file it replied to
    received_at     TEXT NOT NULL,
    late_seconds    INTEGER NOT NULL DEFAULT 0,  -- as told in the receipt, 0 = on time
    withdrawn_at    TEXT,                    -- !unsubmit
    UNIQUE (assignment_id, learner, version) -- also serves "a learner's versions"
);
CREATE INDEX submissions_by_learner ON submissions(learner, assignment_id);

-- Every grading is kept; the newest one counts.
CREATE TABLE grades (
    id            INTEGER PRIMARY KEY,
    assignment_id INTEGER NOT NULL REFERENCES assignments(id) ON DELETE CASCADE,
    learner       TEXT NOT NULL,
    score         REAL NOT NULL,
    max_score     REAL NOT NULL,
    feedback      TEXT NOT NULL DEFAULT '',
    version       INTEGER,                   -- the submission version graded, if any
    graded_by     TEXT NOT NULL,
    graded_at     TEXT NOT NULL
);
CREATE INDEX grades_by_learner ON grades(assignment_id, learner, id);

-- !return: the teacher asks for a resubmission.
CREATE TABLE returns (
    id            INTEGER PRIMARY KEY,
    assignment_id INTEGER NOT NULL REFERENCES assignments(id) ON DELETE CASCADE,
    learner       TEXT NOT NULL,
    note          TEXT NOT NULL DEFAULT '',
    version       INTEGER,                   -- the submission version returned, if any
    returned_by   TEXT NOT NULL,
    returned_at   TEXT NOT NULL
);
CREATE INDEX returns_by_learner ON returns(assignment_id, learner, id);

-- An action that waits for `!confirm` from the same user in the same room, until it expires.
-- One per user and room: asking again replaces the earlier one.
CREATE TABLE pending_confirmations (
    id         INTEGER PRIMARY KEY,
    user_id    TEXT NOT NULL,
    room_id    TEXT NOT NULL,
    action     TEXT NOT NULL,
    payload    TEXT NOT NULL,                -- JSON
    question   TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    UNIQUE (user_id, room_id)
);
CREATE INDEX pending_confirmations_expiry ON pending_confirmations(expires_at);
