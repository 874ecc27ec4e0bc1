-- Notifications with their delivery attempts, and the OCPP message log.

CREATE TABLE notifications (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 50),
    subject     TEXT NOT NULL,
    body_text   TEXT NOT NULL,
    body_html   TEXT,
    sms_text    TEXT,
    -- Overall outcome: pending until a channel delivered it or every channel gave up.
    status      TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    booking_id  BIGINT REFERENCES bookings (id),
    session_id  BIGINT REFERENCES charging_sessions (id),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX notifications_user_idx ON notifications (user_id, id DESC);
CREATE INDEX notifications_pending_idx ON notifications (id) WHERE status = 'pending';
-- At most one notification of a kind per booking (slot start, expiry...), so a timer
-- and the backup sweep cannot both send it.
CREATE UNIQUE INDEX notifications_booking_kind_key ON notifications (booking_id, kind) WHERE booking_id IS NOT NULL;

CREATE TABLE notification_deliveries (
    id               BIGSERIAL PRIMARY KEY,
    notification_id  BIGINT NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    channel          TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    attempt          INTEGER NOT NULL CHECK (attempt >= 1),
    outcome          TEXT NOT NULL CHECK (outcome IN ('sent', 'failed', 'skipped')),
    error            TEXT,
    attempted_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    next_attempt_at  TIMESTAMPTZ,
    UNIQUE (notification_id, channel, attempt)
);

-- Every OCPP frame in and out, per charge point (kept for a configurable retention).
CREATE TABLE ocpp_messages (
    id               BIGSERIAL PRIMARY KEY,
    charge_point_id  TEXT NOT NULL,
    direction        TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    message_type     SMALLINT CHECK (message_type IN (2, 3, 4)),
    message_id       TEXT,
    action           TEXT,
    payload          TEXT NOT NULL,
    error_code       TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ocpp_messages_charger_idx ON ocpp_messages (charge_point_id, id DESC);
CREATE INDEX ocpp_messages_created_idx ON ocpp_messages (created_at);
