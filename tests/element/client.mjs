// One Matrix client that behaves as Element does today, driven over JSON lines.
//
// matrix-js-sdk (the SDK under Element Web) with its Rust crypto, the user's own cross-signing
// identity bootstrapped at login (as Element does), and Element's device isolation mode:
// OnlySignedDevicesIsolationMode ("exclude insecure devices", MSC4153) unless asked otherwise.
//
// Protocol: one JSON object per line on stdin, {"id": 1, "method": "login", "params": {...}};
// one per line on stdout, {"id": 1, "result": ...} or {"id": 1, "error": {"message": ..., ...}}.
// Everything else (the SDK's own logging) goes to stderr. One client per process.

// matrix-js-sdk 43 asks for Node 22; Node 20 lacks only this (without it the first sync aborts
// and the device never uploads its keys).
if (typeof Promise.withResolvers !== "function") {
    Promise.withResolvers = function withResolvers() {
        let resolve, reject;
        const promise = new this((res, rej) => {
            resolve = res;
            reject = rej;
        });
        return { promise, resolve, reject };
    };
}

import { createHash, createCipheriv, randomBytes } from "node:crypto";
import { format } from "node:util";
import { createInterface } from "node:readline";

// stdout carries the protocol only: the SDK's logger binds console methods when it is first
// imported, so redirect them before importing it.
const toStderr = (...args) => process.stderr.write(`${new Date().toISOString()} ${format(...args)}\n`);
console.log = console.info = console.debug = console.trace = console.warn = toStderr;
console.error = toStderr;

const sdk = await import("matrix-js-sdk");
const cryptoApi = await import("matrix-js-sdk/lib/crypto-api/index.js");
const { logger } = await import("matrix-js-sdk/lib/logger.js");
logger.setLevel(process.env.ELEMENT_LOG_LEVEL || "info");

const ENCRYPTION = "m.megolm.v1.aes-sha2";

/** @type {import("matrix-js-sdk").MatrixClient | null} */
let client = null;
let me = { userId: null, deviceId: null, password: null };
const timelines = new Map(); // room id -> [MatrixEvent] (live events of others, in arrival order)
const takenInvites = new Set();
const arrivedAt = new WeakMap(); // MatrixEvent -> when it came in (ms)
// A message can arrive before its room key (they travel separately); give the key this long before
// judging the message undecryptable.
const KEY_GRACE_MS = 10_000;
let waiters = new Set(); // functions to call on any change

function changed() {
    for (const w of [...waiters]) w();
}

function waitChange(deadline) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
        const done = (value) => {
            clearTimeout(timer);
            waiters.delete(onChange);
            resolve(value);
        };
        const onChange = () => done(true);
        const timer = setTimeout(() => done(false), remaining);
        waiters.add(onChange);
    });
}

class ClientError extends Error {
    constructor(message, extra = {}) {
        super(message);
        Object.assign(this, extra);
    }
}

function need() {
    if (!client) throw new ClientError("not logged in: call login first");
    return client;
}

function timeline(roomId) {
    if (!timelines.has(roomId)) timelines.set(roomId, []);
    return timelines.get(roomId);
}

// ------------------------------------------------------------------ login

async function login({ baseUrl, user, password, deviceName = "Element test client", isolation = "only_signed", crossSign = true }) {
    if (client) throw new ClientError("already logged in");
    const anon = sdk.createClient({ baseUrl });
    const resp = await anon.loginRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user },
        password,
        initial_device_display_name: deviceName,
    });
    me = { userId: resp.user_id, deviceId: resp.device_id, password };
    client = sdk.createClient({
        baseUrl,
        userId: resp.user_id,
        deviceId: resp.device_id,
        accessToken: resp.access_token,
    });
    await client.initRustCrypto({ useIndexedDB: false });
    const crypto = client.getCrypto();
    crypto.setDeviceIsolationMode(
        isolation === "all_devices"
            ? new cryptoApi.AllDevicesIsolationMode(false)
            : new cryptoApi.OnlySignedDevicesIsolationMode(),
    );

    client.on(sdk.RoomEvent.Timeline, (event, room, toStartOfTimeline, removed, data) => {
        if (toStartOfTimeline || removed || !data?.liveEvent || !room) return;
        if (event.getSender() === me.userId) return; // own local echoes; tests read others' events
        arrivedAt.set(event, Date.now());
        timeline(room.roomId).push(event);
        changed();
    });
    client.on(sdk.MatrixEventEvent.Decrypted, () => changed());
    client.on(sdk.RoomEvent.MyMembership, () => changed());
    client.on(sdk.RoomStateEvent.Members, () => changed());
    client.on(sdk.ClientEvent.Sync, () => changed());

    const prepared = new Promise((resolve, reject) => {
        const onSync = (state, prev, data) => {
            if (state === sdk.SyncState.Prepared || state === sdk.SyncState.Syncing) {
                client.off(sdk.ClientEvent.Sync, onSync);
                resolve();
            } else if (state === sdk.SyncState.Error && !prev) {
                client.off(sdk.ClientEvent.Sync, onSync);
                reject(new ClientError(`first sync failed: ${data?.error?.message || state}`));
            }
        };
        client.on(sdk.ClientEvent.Sync, onSync);
    });
    await client.startClient({ initialSyncLimit: 20, lazyLoadMembers: true });
    await prepared;

    if (crossSign) await bootstrapCrossSigning();
    const own = await crypto.getDeviceVerificationStatus(me.userId, me.deviceId);
    return {
        user_id: me.userId,
        device_id: me.deviceId,
        master_key: await crypto.getCrossSigningKeyId(),
        device_signed_by_owner: Boolean(own?.signedByOwner),
        isolation: isolation === "all_devices" ? "all_devices" : "only_signed",
    };
}

/** As Element does right after login (or when the user sets up her identity later): the user's
 *  own identity (master, self-signing and user-signing keys) signing this device, with
 *  user-interactive auth by password when the server asks for it. */
async function bootstrapCrossSigning() {
    const c = need();
    await c.getCrypto().bootstrapCrossSigning({
        authUploadDeviceSigningKeys: async (makeRequest) => {
            try {
                return await makeRequest(null);
            } catch (e) {
                if (e?.httpStatus !== 401 || !e?.data?.flows) throw e;
                return await makeRequest({
                    type: "m.login.password",
                    identifier: { type: "m.id.user", user: me.userId },
                    password: me.password,
                    session: e.data.session,
                });
            }
        },
    });
    const status = await c.getCrypto().getCrossSigningStatus();
    if (!(await c.getCrypto().isCrossSigningReady())) {
        throw new ClientError(`cross-signing is not ready after bootstrap: ${JSON.stringify(status)}`);
    }
    const own = await c.getCrypto().getDeviceVerificationStatus(me.userId, me.deviceId);
    return { master_key: await c.getCrypto().getCrossSigningKeyId(), device_signed_by_owner: Boolean(own?.signedByOwner) };
}

// ------------------------------------------------------------------ rooms

async function createDm({ userId, encrypted = true, name = null }) {
    const c = need();
    const initial_state = encrypted
        ? [{ type: "m.room.encryption", state_key: "", content: { algorithm: ENCRYPTION } }]
        : [];
    const opts = { is_direct: true, invite: [userId], preset: sdk.Preset.TrustedPrivateChat, initial_state };
    if (name) opts.name = name;
    const { room_id } = await c.createRoom(opts);
    // Element records the room in m.direct, the list every client reads DMs from
    const direct = c.getAccountData(sdk.EventType.Direct)?.getContent() ?? {};
    const rooms = new Set(direct[userId] ?? []);
    rooms.add(room_id);
    await c.setAccountData(sdk.EventType.Direct, { ...direct, [userId]: [...rooms] });
    await roomReady(room_id, 30_000);
    return { room_id };
}

async function createRoom({ name = null, invite = [], encrypted = true }) {
    const c = need();
    const initial_state = encrypted
        ? [{ type: "m.room.encryption", state_key: "", content: { algorithm: ENCRYPTION } }]
        : [];
    const opts = { invite, preset: sdk.Preset.PrivateChat, initial_state };
    if (name) opts.name = name;
    const { room_id } = await c.createRoom(opts);
    await roomReady(room_id, 30_000);
    return { room_id };
}

/** The room is known from sync with this user joined (so sending encrypts as the room says). */
async function roomReady(roomId, timeout) {
    const c = need();
    const deadline = Date.now() + timeout;
    for (;;) {
        const room = c.getRoom(roomId);
        if (room && room.getMyMembership() === "join" && room.currentState.getStateEvents("m.room.create", "")) {
            return room;
        }
        if (!(await waitChange(deadline))) {
            throw new ClientError(`${me.userId}: room ${roomId} not joined and synced within ${timeout / 1000}s`);
        }
    }
}

function inviteInfo(room) {
    const member = room.currentState.getStateEvents("m.room.member", me.userId);
    const nameEvent = room.currentState.getStateEvents("m.room.name", "");
    const createEvent = room.currentState.getStateEvents("m.room.create", "");
    return {
        room_id: room.roomId,
        room_type: createEvent?.getContent()?.type ?? null,
        sender: member?.getSender() ?? null,
        is_direct: Boolean(member?.getContent()?.is_direct),
        name: nameEvent?.getContent()?.name ?? null,
    };
}

function pendingInvites() {
    return need()
        .getRooms()
        .filter((r) => r.getMyMembership() === "invite" && !takenInvites.has(r.roomId))
        .map(inviteInfo);
}

async function waitInvite({ sender = null, name_contains = null, room_id = null, timeout = 20 }) {
    const deadline = Date.now() + timeout * 1000;
    for (;;) {
        for (const info of pendingInvites()) {
            if (sender && info.sender !== sender) continue;
            if (room_id && info.room_id !== room_id) continue;
            if (name_contains && !(info.name ?? "").includes(name_contains)) continue;
            takenInvites.add(info.room_id);
            return info;
        }
        if (!(await waitChange(deadline))) {
            throw new ClientError(
                `${me.userId}: no matching invite within ${timeout}s; pending: ${JSON.stringify(pendingInvites())}`,
            );
        }
    }
}

async function join({ roomId, retries = 10 }) {
    const c = need();
    for (let attempt = 0; ; attempt++) {
        try {
            await c.joinRoom(roomId);
            break;
        } catch (e) {
            // right after a cross-server invite the joining server may not have seen it yet
            const transient = e?.httpStatus === 403 || e?.httpStatus === 404 || /no known servers/i.test(e?.message ?? "");
            if (!transient || attempt >= retries) {
                throw new ClientError(`${me.userId} joining ${roomId} (attempt ${attempt + 1}): ${e?.message}`, {
                    errcode: e?.errcode,
                });
            }
            await new Promise((r) => setTimeout(r, 100 + 100 * attempt));
        }
    }
    takenInvites.add(roomId);
    timeline(roomId);
    await roomReady(roomId, 30_000);
    return { room_id: roomId };
}

async function waitMember({ roomId, userId, membership = "join", timeout = 30 }) {
    const c = need();
    const deadline = Date.now() + timeout * 1000;
    for (;;) {
        const ev = c.getRoom(roomId)?.currentState.getStateEvents("m.room.member", userId);
        if (ev?.getContent()?.membership === membership) return { event_id: ev.getId() };
        if (!(await waitChange(deadline))) {
            throw new ClientError(
                `${me.userId}: ${userId} not ${membership} in ${roomId} within ${timeout}s (now: ${ev?.getContent()?.membership ?? "none"})`,
            );
        }
    }
}

async function isEncryptedRoom({ roomId }) {
    return { encrypted: Boolean(await need().getCrypto().isEncryptionEnabledInRoom(roomId)) };
}

// ------------------------------------------------------------------ sending

function relation({ replyTo = null, threadRoot = null }) {
    if (threadRoot) {
        // as Element: a thread message; a reply inside the thread when replyTo is given
        const rel = { rel_type: "m.thread", event_id: threadRoot, is_falling_back: !replyTo };
        if (replyTo) rel["m.in_reply_to"] = { event_id: replyTo };
        return rel;
    }
    if (replyTo) return { "m.in_reply_to": { event_id: replyTo } };
    return null;
}

async function sendText({ roomId, body, replyTo = null, threadRoot = null, msgtype = "m.text" }) {
    const c = need();
    await roomReady(roomId, 30_000);
    const content = { msgtype, body };
    const rel = relation({ replyTo, threadRoot });
    if (rel) content["m.relates_to"] = rel;
    const { event_id } = await c.sendMessage(roomId, threadRoot ?? null, content);
    return { event_id };
}

const b64 = (buf) => Buffer.from(buf).toString("base64").replace(/=+$/, "");
const b64url = (buf) => Buffer.from(buf).toString("base64url");

/** AES-256-CTR with a SHA-256 of the ciphertext, as Element's matrix-encrypt-attachment (v2). */
function encryptAttachment(plain) {
    const key = randomBytes(32);
    const iv = Buffer.concat([randomBytes(8), Buffer.alloc(8)]); // the counter half starts at zero
    const cipher = createCipheriv("aes-256-ctr", key, iv);
    const data = Buffer.concat([cipher.update(plain), cipher.final()]);
    return {
        data,
        info: {
            v: "v2",
            key: { alg: "A256CTR", ext: true, k: b64url(key), key_ops: ["encrypt", "decrypt"], kty: "oct" },
            iv: b64(iv),
            hashes: { sha256: b64(createHash("sha256").update(data).digest()) },
        },
    };
}

async function sendFile({ roomId, dataB64, filename, mimetype = "application/octet-stream", replyTo = null, threadRoot = null }) {
    const c = need();
    await roomReady(roomId, 30_000);
    const plain = Buffer.from(dataB64, "base64");
    const encrypted = await c.getCrypto().isEncryptionEnabledInRoom(roomId);
    const content = { msgtype: "m.file", body: filename, filename, info: { mimetype, size: plain.length } };
    let mxc;
    if (encrypted) {
        // as Element in an encrypted room: the server only ever holds ciphertext
        const { data, info } = encryptAttachment(plain);
        ({ content_uri: mxc } = await c.uploadContent(data, { type: "application/octet-stream", includeFilename: false }));
        content.file = { url: mxc, mimetype, ...info };
    } else {
        ({ content_uri: mxc } = await c.uploadContent(plain, { type: mimetype, name: filename }));
        content.url = mxc;
    }
    const rel = relation({ replyTo, threadRoot });
    if (rel) content["m.relates_to"] = rel;
    const { event_id } = await c.sendMessage(roomId, threadRoot ?? null, content);
    return { event_id, mxc, encrypted_file: Boolean(encrypted) };
}

// ------------------------------------------------------------------ receiving

const colourName = (c) => cryptoApi.EventShieldColour[c] ?? String(c);
const reasonName = (r) => (r === null || r === undefined ? null : (cryptoApi.EventShieldReason[r] ?? String(r)));

/** Still being decrypted (or not yet tried, or its key may still come): not ready to be judged. */
function settling(event, keyGraceMs = KEY_GRACE_MS) {
    if (event.isBeingDecrypted()) return true;
    if (event.isDecryptionFailure()) {
        const waitingForKey = event.decryptionFailureReason === cryptoApi.DecryptionFailureCode.MEGOLM_UNKNOWN_INBOUND_SESSION_ID;
        return waitingForKey && Date.now() - (arrivedAt.get(event) ?? 0) < keyGraceMs;
    }
    return event.getWireType() === "m.room.encrypted" && event.getType() === "m.room.encrypted";
}

async function describe(event) {
    const c = need();
    const failed = event.isDecryptionFailure();
    let shield = null;
    if (event.isEncrypted() && !failed) {
        const info = await c.getCrypto().getEncryptionInfoForEvent(event);
        if (info) shield = { colour: colourName(info.shieldColour), reason: reasonName(info.shieldReason) };
    }
    return {
        event_id: event.getId(),
        room_id: event.getRoomId(),
        sender: event.getSender(),
        sender_device: event.getWireContent()?.device_id ?? null,
        type: event.getType(),
        wire_type: event.getWireType(),
        encrypted: event.isEncrypted(),
        content: event.getContent(),
        decryption_failure: failed ? (event.decryptionFailureReason ?? "UNKNOWN_ERROR") : null,
        failure_message: failed ? (event.getContent()?.body ?? null) : null,
        shield,
    };
}

/** The event's relation, from the decrypted content or else the wire (relations stay in the clear). */
function relatesTo(event) {
    return event.getContent()?.["m.relates_to"] ?? event.getWireContent()?.["m.relates_to"] ?? {};
}

function matches(event, { sender, not_sender, body_contains, type, msgtype, in_reply_to, answers, undecryptable, event_id }) {
    if (event_id && event.getId() !== event_id) return false;
    if (sender && event.getSender() !== sender) return false;
    if (not_sender && event.getSender() === not_sender) return false;
    if (undecryptable === true && !event.isDecryptionFailure()) return false;
    if (undecryptable === false && event.isDecryptionFailure()) return false;
    if (type && event.getType() !== type) return false;
    const content = event.getContent() ?? {};
    if (msgtype && content.msgtype !== msgtype) return false;
    if (body_contains && !(typeof content.body === "string" && content.body.includes(body_contains))) return false;
    const rel = relatesTo(event);
    const replyTo = rel["m.in_reply_to"]?.event_id;
    if (in_reply_to && replyTo !== in_reply_to) return false;
    if (answers) {
        // an answer to the event: a reply to it, or a message in the thread rooted at it that is not
        // a real reply to something else
        const inThread = rel.rel_type === "m.thread" && rel.event_id === answers && (!replyTo || rel.is_falling_back);
        if (replyTo !== answers && !inThread) return false;
    }
    return true;
}

function mark({ roomId }) {
    return { mark: timeline(roomId).length };
}

async function waitEvent({ roomId, since = null, timeout = 30, key_grace = KEY_GRACE_MS / 1000, ...predicate }) {
    const events = timeline(roomId);
    const start = since ?? events.length;
    const deadline = Date.now() + timeout * 1000;
    for (;;) {
        for (const event of events.slice(start)) {
            if (settling(event, key_grace * 1000)) {
                if (!event.isBeingDecrypted()) need().decryptEventIfNeeded(event).catch(() => {});
                continue;
            }
            if (matches(event, predicate)) return await describe(event);
        }
        // wake at least every second: a key grace period may have run out
        if (!(await waitChange(Math.min(deadline, Date.now() + 1000))) && Date.now() >= deadline) {
            const seen = [];
            for (const e of events.slice(start)) {
                const content = e.getContent() ?? {};
                seen.push(
                    `${e.getId()} ${e.getType()} from ${e.getSender()}` +
                        (e.isDecryptionFailure() ? ` UNDECRYPTABLE(${e.decryptionFailureReason})` : "") +
                        (typeof content.body === "string" ? ` ${JSON.stringify(content.body.slice(0, 120))}` : ""),
                );
            }
            throw new ClientError(
                `${me.userId}: no event matching ${JSON.stringify(predicate)} in ${roomId} within ${timeout}s; seen:\n  ` +
                    (seen.join("\n  ") || "(nothing)"),
            );
        }
    }
}

/** Every recorded event of others in the room (settled ones), described. */
async function events({ roomId, since = 0 }) {
    const out = [];
    for (const event of timeline(roomId).slice(since)) {
        if (!settling(event)) out.push(await describe(event));
    }
    return out;
}

/** One event by id as this client sees it now (fetched from the server if not yet known). */
async function getEvent({ roomId, eventId, timeout = 30 }) {
    const c = need();
    let event = c.getRoom(roomId)?.findEventById(eventId);
    if (!event) {
        const raw = await c.fetchRoomEvent(roomId, eventId);
        event = new sdk.MatrixEvent(raw);
    }
    const deadline = Date.now() + timeout * 1000;
    if (!arrivedAt.has(event)) arrivedAt.set(event, Date.now());
    await c.decryptEventIfNeeded(event);
    while (settling(event) && Date.now() < deadline) {
        await waitChange(Math.min(deadline, Date.now() + 1000));
    }
    return await describe(event);
}

// ------------------------------------------------------------------ trust

async function userDevices({ userId }) {
    const map = await need().getCrypto().getUserDeviceInfo([userId], true);
    return [...(map.get(userId)?.keys() ?? [])];
}

async function deviceStatus({ userId, deviceId }) {
    const crypto = need().getCrypto();
    await crypto.getUserDeviceInfo([userId], true); // as Element: ask the server for fresh keys
    const status = await crypto.getDeviceVerificationStatus(userId, deviceId);
    if (!status) return null;
    return {
        signed_by_owner: status.signedByOwner,
        cross_signing_verified: status.crossSigningVerified,
        locally_verified: status.localVerified,
        verified: status.isVerified(),
    };
}

async function userIdentity({ userId }) {
    const crypto = need().getCrypto();
    await crypto.getUserDeviceInfo([userId], true);
    const status = await crypto.getUserVerificationStatus(userId);
    return {
        known: status.known,
        verified: status.isVerified(),
        needs_user_approval: status.needsUserApproval,
        was_verified: status.wasCrossSigningVerified(),
    };
}

async function whoami() {
    const c = need();
    const crypto = c.getCrypto();
    return {
        user_id: me.userId,
        device_id: me.deviceId,
        master_key: await crypto.getCrossSigningKeyId(),
        cross_signing_ready: await crypto.isCrossSigningReady(),
    };
}

async function stop() {
    if (client) {
        client.stopClient();
        await client.getCrypto()?.stop?.();
    }
    setTimeout(() => process.exit(0), 50);
    return { stopped: true };
}

// ------------------------------------------------------------------ dispatch

const methods = {
    login,
    cross_sign_device: async (p) => {
        // what Element does on the verified device at the end of verifying a new login
        await need().getCrypto().crossSignDevice(p.device_id);
        return { signed: p.device_id };
    },
    whoami,
    create_dm: (p) => createDm({ userId: p.user_id, encrypted: p.encrypted, name: p.name }),
    create_room: (p) => createRoom({ name: p.name, invite: p.invite, encrypted: p.encrypted }),
    invites: () => pendingInvites(),
    wait_invite: (p) => waitInvite(p),
    join: (p) => join({ roomId: p.room_id, retries: p.retries }),
    wait_member: (p) => waitMember({ roomId: p.room_id, userId: p.user_id, membership: p.membership, timeout: p.timeout }),
    is_encrypted: (p) => isEncryptedRoom({ roomId: p.room_id }),
    send_text: (p) =>
        sendText({ roomId: p.room_id, body: p.body, replyTo: p.reply_to, threadRoot: p.thread_root, msgtype: p.msgtype }),
    send_file: (p) =>
        sendFile({
            roomId: p.room_id,
            dataB64: p.data_b64,
            filename: p.filename,
            mimetype: p.mimetype,
            replyTo: p.reply_to,
            threadRoot: p.thread_root,
        }),
    mark: (p) => mark({ roomId: p.room_id }),
    wait_event: ({ room_id, ...rest }) => waitEvent({ roomId: room_id, ...rest }),
    events: (p) => events({ roomId: p.room_id, since: p.since }),
    get_event: (p) => getEvent({ roomId: p.room_id, eventId: p.event_id, timeout: p.timeout }),
    user_devices: (p) => userDevices({ userId: p.user_id }),
    device_status: (p) => deviceStatus({ userId: p.user_id, deviceId: p.device_id }),
    user_identity: (p) => userIdentity({ userId: p.user_id }),
    stop,
};

function reply(obj) {
    process.stdout.write(JSON.stringify(obj) + "\n");
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", async (line) => {
    if (!line.trim()) return;
    let msg;
    try {
        msg = JSON.parse(line);
    } catch (e) {
        reply({ id: null, error: { message: `not JSON: ${e.message}` } });
        return;
    }
    const fn = methods[msg.method];
    if (!fn) {
        reply({ id: msg.id, error: { message: `unknown method ${msg.method}; known: ${Object.keys(methods).join(", ")}` } });
        return;
    }
    try {
        const result = await fn(msg.params ?? {});
        reply({ id: msg.id, result: result ?? null });
    } catch (e) {
        toStderr(`method ${msg.method} failed:`, e);
        reply({
            id: msg.id,
            error: {
                message: e?.message ?? String(e),
                errcode: e?.errcode ?? e?.data?.errcode ?? null,
                http_status: e?.httpStatus ?? null,
            },
        });
    }
});
rl.on("close", async () => {
    // the driver went away: leave cleanly
    try {
        client?.stopClient();
    } finally {
        process.exit(0);
    }
});
reply({ id: null, ready: true, sdk: "matrix-js-sdk" });
