-- Charging sessions (OCPP transactions), their meter values and the owners' revenue.

-- OCPP transaction ids are 32-bit integers handed out by the central system.
CREATE SEQUENCE ocpp_transaction_id_seq AS INTEGER START WITH 1 MINVALUE 1;

CREATE TABLE charging_sessions (
    id                   BIGSERIAL PRIMARY KEY,
    -- NULL only for a transaction a charger started with an idTag we do not know:
    -- it is recorded (never lost), answered Invalid, and never billed.
    user_id              BIGINT REFERENCES users (id),
    charger_id           BIGINT NOT NULL REFERENCES chargers (id),
    connector_id         BIGINT NOT NULL REFERENCES connectors (id),
    station_id           BIGINT REFERENCES stations (id),
    transaction_id       INTEGER UNIQUE,
    id_tag               TEXT NOT NULL,
    source               TEXT NOT NULL CHECK (source IN ('app', 'charger', 'manual')),
    status               TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active', 'completed', 'cancelled', 'failed')),
    price_per_kwh        NUMERIC(10, 2) NOT NULL CHECK (price_per_kwh >= 0),
    meter_start_wh       BIGINT CHECK (meter_start_wh >= 0),
    meter_last_wh        BIGINT,
    meter_stop_wh        BIGINT,
    energy_wh            BIGINT NOT NULL DEFAULT 0 CHECK (energy_wh >= 0),
    power_w              BIGINT,
    soc_percent          SMALLINT CHECK (soc_percent BETWEEN 0 AND 100),
    battery_level_start  SMALLINT CHECK (battery_level_start BETWEEN 0 AND 100),
    battery_level_end    SMALLINT CHECK (battery_level_end BETWEEN 0 AND 100),
    cost                 NUMERIC(14, 2) NOT NULL DEFAULT 0 CHECK (cost >= 0),
    limit_energy_wh      BIGINT CHECK (limit_energy_wh > 0),
    limit_amount         NUMERIC(14, 2) CHECK (limit_amount > 0),
    requested_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The charger's StartTransaction timestamp (may be in the past for offline starts).
    started_at           TIMESTAMPTZ,
    ended_at             TIMESTAMPTZ,
    duration_seconds     INTEGER CHECK (duration_seconds >= 0),
    average_power_w      BIGINT,
    stop_reason          TEXT,
    ocpp_stop_reason     TEXT,
    meter_fault          BOOLEAN NOT NULL DEFAULT FALSE,
    rating               SMALLINT CHECK (rating BETWEEN 1 AND 5),
    settled_at           TIMESTAMPTZ,
    booking_id           BIGINT,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((status IN ('pending', 'active')) = (settled_at IS NULL)),
    CHECK (ended_at IS NULL OR started_at IS NULL OR ended_at >= started_at)
);
-- One active session per connector and per driver.
CREATE UNIQUE INDEX charging_sessions_one_per_connector ON charging_sessions (connector_id)
    WHERE status IN ('pending', 'active');
CREATE UNIQUE INDEX charging_sessions_one_per_driver ON charging_sessions (user_id)
    WHERE status IN ('pending', 'active') AND user_id IS NOT NULL;
-- A retransmitted StartTransaction maps onto the transaction it already created.
CREATE UNIQUE INDEX charging_sessions_start_fingerprint ON charging_sessions
    (connector_id, upper(id_tag), meter_start_wh, started_at) WHERE source <> 'manual' AND transaction_id IS NOT NULL;
CREATE INDEX charging_sessions_user_idx ON charging_sessions (user_id, id DESC);
CREATE INDEX charging_sessions_station_idx ON charging_sessions (station_id, status);

CREATE TABLE meter_values (
    id              BIGSERIAL PRIMARY KEY,
    charger_id      BIGINT NOT NULL REFERENCES chargers (id),
    connector_number INTEGER NOT NULL CHECK (connector_number >= 0),
    session_id      BIGINT REFERENCES charging_sessions (id),
    transaction_id  INTEGER,
    sampled_at      TIMESTAMPTZ NOT NULL,
    measurand       TEXT NOT NULL,
    phase           TEXT,
    unit            TEXT,
    context         TEXT,
    location        TEXT,
    format          TEXT,
    -- The value exactly as the charger sent it, and normalised to the base unit
    -- (Wh for energy, W for power, A, V, %, Celsius...) when it could be read.
    raw_value       TEXT NOT NULL,
    value           NUMERIC,
    received_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX meter_values_session_idx ON meter_values (session_id, sampled_at);
CREATE INDEX meter_values_charger_idx ON meter_values (charger_id, id DESC);

-- What each settled session earned its station's owner.
CREATE TABLE revenue_entries (
    id          BIGSERIAL PRIMARY KEY,
    station_id  BIGINT NOT NULL REFERENCES stations (id),
    owner_id    BIGINT NOT NULL REFERENCES users (id),
    session_id  BIGINT NOT NULL REFERENCES charging_sessions (id),
    kind        TEXT NOT NULL DEFAULT 'charging' CHECK (kind IN ('charging', 'adjustment', 'booking')),
    amount      NUMERIC(14, 2) NOT NULL,
    energy_wh   BIGINT NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (session_id, kind)
);
CREATE INDEX revenue_entries_station_idx ON revenue_entries (station_id, created_at);
