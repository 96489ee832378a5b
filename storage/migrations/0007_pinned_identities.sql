-- Users' cross-signing identities, trusted on first use: the master key first seen for each user.
-- A device signed by the pinned identity gets room keys with no further decision; a changed
-- identity (a learner who reset hers) is logged as a warning and pinned anew, as Element does for
-- people one has not verified.
CREATE TABLE pinned_identities (
    user_id    TEXT PRIMARY KEY,
    master_key TEXT NOT NULL,
    pinned_at  TEXT NOT NULL
);
