-- End-to-end encryption: messages the bot could not decrypt yet, and whom it has told about it.

-- An encrypted message whose room key has not arrived. Kept (with the event as received) so that a
-- key arriving a little later, even after a restart, still lets the bot act on it; given up after
-- a short wait, when the sender is told once per room how to fix it.
CREATE TABLE undecrypted_events (
    event_id    TEXT PRIMARY KEY,
    room_id     TEXT NOT NULL,
    sender      TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    source      TEXT NOT NULL,
    received_at TEXT NOT NULL
);

-- Who has been told, per room, that the bot could not read their message: told once, not per message.
CREATE TABLE decryption_notices (
    room_id  TEXT NOT NULL,
    sender   TEXT NOT NULL,
    event_id TEXT NOT NULL,
    told_at  TEXT NOT NULL,
    PRIMARY KEY (room_id, sender)
);
