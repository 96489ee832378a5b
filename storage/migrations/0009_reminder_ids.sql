-- A reminder's id names its sends (ledger keys and transaction ids, `reminder.<id>.<time>`), so it
-- must never be given twice: `INTEGER PRIMARY KEY` reuses the highest id once its row is deleted
-- (`!forget`, `!remind cancel` of the newest), and the homeserver silently drops a reused
-- transaction id. Ids come from this counter, which only goes up.
CREATE TABLE id_sequences (
    name TEXT PRIMARY KEY,
    last INTEGER NOT NULL
);
INSERT INTO id_sequences (name, last) SELECT 'reminders', COALESCE(MAX(id), 0) FROM reminders;
