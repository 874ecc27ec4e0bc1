-- People, their credentials, their wallets and the money that moves through them.

CREATE TABLE users (
    id                  BIGSERIAL PRIMARY KEY,
    username            TEXT NOT NULL CHECK (username ~ '^[A-Za-z0-9_.-]{3,32}$'),
    phone               TEXT NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    email               TEXT CHECK (email IS NULL OR (length(email) <= 254 AND email LIKE '%_@_%')),
    name                TEXT CHECK (name IS NULL OR length(name) <= 100),
    role                TEXT NOT NULL DEFAULT 'driver' CHECK (role IN ('driver', 'owner', 'admin')),
    pin_hash            TEXT NOT NULL,
    -- The driver's OCPP idTag (CiString20): chargers authorize it as this user.
    id_tag              TEXT NOT NULL CHECK (length(id_tag) BETWEEN 1 AND 20),
    vehicle_battery_wh  BIGINT NOT NULL DEFAULT 60000 CHECK (vehicle_battery_wh BETWEEN 1000 AND 1000000),
    notify_email        BOOLEAN NOT NULL DEFAULT TRUE,
    notify_sms          BOOLEAN NOT NULL DEFAULT TRUE,
    failed_logins       INTEGER NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until        TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_phone_key ON users (phone);
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX users_id_tag_key ON users (upper(id_tag));

-- Bearer tokens (API) and cookie sessions (web UI); only a hash of the secret is stored.
CREATE TABLE auth_tokens (
    id            BIGSERIAL PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash    BYTEA NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    kind          TEXT NOT NULL CHECK (kind IN ('api', 'web')),
    csrf_token    TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at    TIMESTAMPTZ NOT NULL,
    last_used_at  TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ,
    CHECK (expires_at > created_at)
);
CREATE INDEX auth_tokens_user_idx ON auth_tokens (user_id);

-- Every login attempt, for throttling per account and per client address.
CREATE TABLE login_attempts (
    id           BIGSERIAL PRIMARY KEY,
    login        TEXT NOT NULL,
    client_addr  TEXT NOT NULL,
    succeeded    BOOLEAN NOT NULL,
    attempted_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_addr_idx ON login_attempts (client_addr, attempted_at);

-- RFID cards a driver registered; they authorize at chargers as that driver.
CREATE TABLE rfid_cards (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id_tag      TEXT NOT NULL CHECK (length(id_tag) BETWEEN 1 AND 20),
    label       TEXT CHECK (label IS NULL OR length(label) <= 50),
    blocked     BOOLEAN NOT NULL DEFAULT FALSE,
    expires_at  TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX rfid_cards_id_tag_key ON rfid_cards (upper(id_tag));
CREATE INDEX rfid_cards_user_idx ON rfid_cards (user_id);

-- One prepaid INR wallet per user. The balance is a running total of wallet_entries,
-- maintained in the same transaction that appends an entry.
CREATE TABLE wallets (
    user_id     BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    balance     NUMERIC(14, 2) NOT NULL DEFAULT 0,
    currency    TEXT NOT NULL DEFAULT 'INR' CHECK (currency = 'INR'),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The append-only ledger. A reference (payment, session, booking) is credited or debited
-- at most once per kind: a replayed callback or a second settlement hits the unique key.
CREATE TABLE wallet_entries (
    id              BIGSERIAL PRIMARY KEY,
    user_id         BIGINT NOT NULL REFERENCES wallets (user_id),
    amount          NUMERIC(14, 2) NOT NULL CHECK (amount <> 0),
    kind            TEXT NOT NULL CHECK (kind IN ('recharge', 'charging', 'booking', 'refund', 'adjustment')),
    description     TEXT NOT NULL CHECK (length(description) BETWEEN 1 AND 200),
    reference_kind  TEXT NOT NULL CHECK (reference_kind IN ('payment', 'session', 'booking', 'manual')),
    reference_id    BIGINT NOT NULL,
    balance_after   NUMERIC(14, 2) NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (kind <> 'recharge' OR amount > 0),
    CHECK (kind <> 'refund' OR amount > 0),
    CHECK (kind NOT IN ('charging', 'booking') OR amount < 0)
);
CREATE UNIQUE INDEX wallet_entries_reference_key ON wallet_entries (reference_kind, reference_id, kind);
CREATE INDEX wallet_entries_user_idx ON wallet_entries (user_id, id DESC);

CREATE FUNCTION wallet_entries_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'wallet_entries is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER wallet_entries_no_update BEFORE UPDATE OR DELETE ON wallet_entries
    FOR EACH ROW EXECUTE FUNCTION wallet_entries_append_only();

-- Wallet recharges through a payment provider (PhonePe, or the local sandbox).
CREATE TABLE payments (
    id                       BIGSERIAL PRIMARY KEY,
    user_id                  BIGINT NOT NULL REFERENCES users (id),
    merchant_transaction_id  TEXT NOT NULL UNIQUE CHECK (length(merchant_transaction_id) BETWEEN 1 AND 38),
    provider                 TEXT NOT NULL CHECK (provider IN ('sandbox', 'phonepe')),
    amount                   NUMERIC(14, 2) NOT NULL CHECK (amount > 0),
    state                    TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'succeeded', 'failed', 'expired')),
    provider_reference       TEXT,
    failure_reason           TEXT,
    check_attempts           INTEGER NOT NULL DEFAULT 0,
    last_checked_at          TIMESTAMPTZ,
    completed_at             TIMESTAMPTZ,
    created_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((state = 'pending') = (completed_at IS NULL))
);
CREATE INDEX payments_user_idx ON payments (user_id, id DESC);
CREATE INDEX payments_pending_idx ON payments (created_at) WHERE state = 'pending';
