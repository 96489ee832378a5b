-- Trust across schools: whom each message the bot sent is about (so that a learner's right to be
-- forgotten reaches the bot's own events), and the servers an operator has blocked.

-- The users an outbox message is about: those it names or mentions, and the owner of the work
-- room or direct message it went to. `!forget` redacts these events.
CREATE TABLE outbox_about (
    user_id   TEXT NOT NULL,
    outbox_id INTEGER NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, outbox_id)
);
CREATE INDEX outbox_about_by_message ON outbox_about(outbox_id);

-- Messages queued before this table existed: every known user whose id appears in the content, and
-- the owners of the rooms they went to. A substring match may find a few too many, never too few:
-- when in doubt, a message is redacted.
INSERT OR IGNORE INTO outbox_about (user_id, outbox_id)
SELECT u.user_id, o.id
FROM outbox o
JOIN (SELECT user_id FROM class_members UNION SELECT owner FROM rooms WHERE owner IS NOT NULL) u
  ON instr(o.content, u.user_id) > 0;
INSERT OR IGNORE INTO outbox_about (user_id, outbox_id)
SELECT r.owner, o.id FROM outbox o JOIN rooms r ON r.room_id = o.room_id
WHERE r.owner IS NOT NULL AND r.kind IN ('work', 'dm');

-- Servers whose users gain nothing (`!school block`): their invites are declined, their users
-- removed from classes, and every class room carries an m.room.server_acl denying them.
CREATE TABLE blocked_servers (
    server     TEXT PRIMARY KEY,           -- as written in user ids, port included (localhost:8483)
    blocked_by TEXT NOT NULL,
    blocked_at TEXT NOT NULL
);
