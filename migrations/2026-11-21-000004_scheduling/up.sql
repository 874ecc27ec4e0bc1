-- Waiting queues, slot bookings and the OCPP reservations that hold connectors for them.

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE bookings (
    id                BIGSERIAL PRIMARY KEY,
    user_id           BIGINT NOT NULL REFERENCES users (id),
    charger_id        BIGINT NOT NULL REFERENCES chargers (id),
    connector_id      BIGINT NOT NULL REFERENCES connectors (id),
    start_at          TIMESTAMPTZ NOT NULL,
    end_at            TIMESTAMPTZ NOT NULL,
    status            TEXT NOT NULL DEFAULT 'confirmed' CHECK (status IN
                          ('confirmed', 'grace', 'checked_in', 'charging', 'completed', 'expired', 'cancelled')),
    fee               NUMERIC(10, 2) NOT NULL CHECK (fee >= 0),
    grace_ends_at     TIMESTAMPTZ,
    slot_started_at   TIMESTAMPTZ,
    checked_in_at     TIMESTAMPTZ,
    checkin_method    TEXT CHECK (checkin_method IN ('app', 'qr')),
    expired_at        TIMESTAMPTZ,
    expired_reason    TEXT,
    cancelled_at      TIMESTAMPTZ,
    refund_amount     NUMERIC(10, 2) CHECK (refund_amount >= 0),
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (end_at > start_at),
    -- No two live bookings overlap on one connector.
    EXCLUDE USING gist (connector_id WITH =, tstzrange(start_at, end_at) WITH &&)
        WHERE (status NOT IN ('expired', 'cancelled'))
);
CREATE INDEX bookings_user_idx ON bookings (user_id, start_at DESC);
CREATE INDEX bookings_open_idx ON bookings (start_at) WHERE status IN ('confirmed', 'grace');

ALTER TABLE charging_sessions
    ADD CONSTRAINT charging_sessions_booking_fk FOREIGN KEY (booking_id) REFERENCES bookings (id);

CREATE TABLE queue_entries (
    id                BIGSERIAL PRIMARY KEY,
    charger_id        BIGINT NOT NULL REFERENCES chargers (id),
    -- NULL: any connector of the charger will do.
    connector_number  INTEGER CHECK (connector_number > 0),
    user_id           BIGINT NOT NULL REFERENCES users (id),
    status            TEXT NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'held', 'started', 'left', 'lapsed')),
    -- While held: which connector is held and until when.
    held_connector    INTEGER,
    held_until        TIMESTAMPTZ,
    joined_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at       TIMESTAMPTZ,
    CHECK ((status = 'held') = (held_until IS NOT NULL AND held_connector IS NOT NULL))
);
-- A driver waits in at most one queue at a time.
CREATE UNIQUE INDEX queue_entries_one_per_driver ON queue_entries (user_id) WHERE status IN ('waiting', 'held');
CREATE INDEX queue_entries_charger_idx ON queue_entries (charger_id, joined_at) WHERE status IN ('waiting', 'held');

-- OCPP reservationId values are integers handed out by the central system.
CREATE TABLE reservations (
    id                INTEGER PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
    charger_id        BIGINT NOT NULL REFERENCES chargers (id),
    connector_number  INTEGER NOT NULL CHECK (connector_number >= 0),
    id_tag            TEXT NOT NULL,
    user_id           BIGINT REFERENCES users (id),
    booking_id        BIGINT REFERENCES bookings (id),
    queue_entry_id    BIGINT REFERENCES queue_entries (id),
    expires_at        TIMESTAMPTZ NOT NULL,
    status            TEXT NOT NULL DEFAULT 'requested' CHECK (status IN
                          ('requested', 'accepted', 'rejected', 'unsupported', 'used', 'cancelled', 'expired')),
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX reservations_charger_idx ON reservations (charger_id, connector_number) WHERE status IN ('requested', 'accepted');
