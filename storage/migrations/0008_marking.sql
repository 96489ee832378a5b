-- Marking queues (`!mark A1`): each teacher's session in one room, and the submission it shows.
-- Two open sessions never show the same learner's work on one assignment (the unique index), so
-- teachers marking at once never get the same submission.
CREATE TABLE marking_sessions (
    id            INTEGER PRIMARY KEY,
    assignment_id INTEGER NOT NULL REFERENCES assignments(id) ON DELETE CASCADE,
    teacher       TEXT NOT NULL,
    room_id       TEXT NOT NULL,             -- where !grade / !return / !skip act on it
    learner       TEXT,                      -- whose work is shown now (NULL: nothing)
    version       INTEGER,                   -- the version shown
    graded        INTEGER NOT NULL DEFAULT 0,
    returned      INTEGER NOT NULL DEFAULT 0,
    started_at    TEXT NOT NULL,
    active_at     TEXT NOT NULL,             -- last step (a session idle too long lets go of what it shows)
    ended_at      TEXT
);
CREATE UNIQUE INDEX marking_open_per_room ON marking_sessions(teacher, room_id) WHERE ended_at IS NULL;
CREATE UNIQUE INDEX marking_one_holder ON marking_sessions(assignment_id, learner)
    WHERE ended_at IS NULL AND learner IS NOT NULL;

-- Work a teacher put aside with !skip: not shown again in that session.
CREATE TABLE marking_skips (
    session_id INTEGER NOT NULL REFERENCES marking_sessions(id) ON DELETE CASCADE,
    learner    TEXT NOT NULL,
    PRIMARY KEY (session_id, learner)
);
