-- Stations, their chargers and connectors, and what the chargers report about themselves.

CREATE TABLE stations (
    id             BIGSERIAL PRIMARY KEY,
    owner_id       BIGINT NOT NULL REFERENCES users (id),
    name           TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    address        TEXT NOT NULL DEFAULT '' CHECK (length(address) <= 300),
    latitude       NUMERIC(9, 6) CHECK (latitude BETWEEN -90 AND 90),
    longitude      NUMERIC(9, 6) CHECK (longitude BETWEEN -180 AND 180),
    price_per_kwh  NUMERIC(10, 2) NOT NULL CHECK (price_per_kwh >= 0),
    -- Per-station booking fee; NULL means the configured global fee.
    booking_fee    NUMERIC(10, 2) CHECK (booking_fee >= 0),
    opening_hours  TEXT CHECK (opening_hours IS NULL OR length(opening_hours) <= 200),
    active         BOOLEAN NOT NULL DEFAULT TRUE,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((latitude IS NULL) = (longitude IS NULL))
);
CREATE INDEX stations_owner_idx ON stations (owner_id);

CREATE TABLE chargers (
    id                    BIGSERIAL PRIMARY KEY,
    charge_point_id       TEXT NOT NULL UNIQUE CHECK (charge_point_id ~ '^[A-Za-z0-9._:-]{1,48}$'),
    -- NULL while unassigned (an unknown charger registered by policy, not yet claimed).
    station_id            BIGINT REFERENCES stations (id),
    -- Security profile 1: argon2 hash of the charger's Basic-auth password.
    password_hash         TEXT,
    registration_status   TEXT NOT NULL DEFAULT 'accepted' CHECK (registration_status IN ('accepted', 'pending', 'rejected')),
    vendor                TEXT,
    model                 TEXT,
    charge_point_serial   TEXT,
    charge_box_serial     TEXT,
    firmware_version      TEXT,
    iccid                 TEXT,
    imsi                  TEXT,
    meter_type            TEXT,
    meter_serial          TEXT,
    feature_profiles      TEXT,
    firmware_status       TEXT,
    diagnostics_status    TEXT,
    local_list_version    INTEGER,
    online                BOOLEAN NOT NULL DEFAULT FALSE,
    -- When the current (or last) connection was opened; a closing connection only marks the
    -- charger offline if no newer connection has replaced it since.
    connected_at          TIMESTAMPTZ,
    last_boot_at          TIMESTAMPTZ,
    last_seen_at          TIMESTAMPTZ,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX chargers_station_idx ON chargers (station_id);

-- Connector 0 stands for the charger as a whole, as in OCPP.
CREATE TABLE connectors (
    id                 BIGSERIAL PRIMARY KEY,
    charger_id         BIGINT NOT NULL REFERENCES chargers (id) ON DELETE CASCADE,
    connector_number   INTEGER NOT NULL CHECK (connector_number BETWEEN 0 AND 100),
    status             TEXT NOT NULL DEFAULT 'Unknown' CHECK (status IN ('Unknown', 'Available', 'Preparing', 'Charging',
                           'SuspendedEVSE', 'SuspendedEV', 'Finishing', 'Reserved', 'Unavailable', 'Faulted')),
    error_code         TEXT NOT NULL DEFAULT 'NoError',
    info               TEXT,
    vendor_id          TEXT,
    vendor_error_code  TEXT,
    -- FALSE when the owner says the charger's meter cannot be trusted; the app's energy is used.
    metered            BOOLEAN NOT NULL DEFAULT TRUE,
    status_at          TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (charger_id, connector_number)
);

CREATE TABLE connector_status_history (
    id                 BIGSERIAL PRIMARY KEY,
    connector_id       BIGINT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    status             TEXT NOT NULL,
    error_code         TEXT NOT NULL,
    info               TEXT,
    vendor_id          TEXT,
    vendor_error_code  TEXT,
    -- The charger's own timestamp, when it sent one; received_at is ours.
    reported_at        TIMESTAMPTZ,
    received_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX connector_status_history_idx ON connector_status_history (connector_id, id DESC);
