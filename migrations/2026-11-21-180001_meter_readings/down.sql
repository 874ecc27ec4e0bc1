-- Back to one row per sampled value.
CREATE TABLE meter_values_table (
    id              BIGSERIAL PRIMARY KEY,
    charger_id      BIGINT NOT NULL,
    connector_number INTEGER NOT NULL CHECK (connector_number >= 0),
    session_id      BIGINT,
    transaction_id  INTEGER,
    sampled_at      TIMESTAMPTZ NOT NULL,
    measurand       TEXT NOT NULL,
    phase           TEXT,
    unit            TEXT,
    context         TEXT,
    location        TEXT,
    format          TEXT,
    raw_value       TEXT NOT NULL,
    value           NUMERIC,
    received_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO meter_values_table (charger_id, connector_number, session_id, transaction_id, sampled_at,
    measurand, phase, unit, context, location, format, raw_value, value, received_at)
SELECT charger_id, connector_number, session_id, transaction_id, sampled_at, measurand, phase, unit,
       context, location, format, raw_value, value, received_at
FROM meter_values ORDER BY reading_id, sample_number;
DROP VIEW meter_values;
DROP TABLE meter_readings;
ALTER TABLE meter_values_table RENAME TO meter_values;
ALTER SEQUENCE meter_values_table_id_seq RENAME TO meter_values_id_seq;
ALTER INDEX meter_values_table_pkey RENAME TO meter_values_pkey;
CREATE INDEX meter_values_session_idx ON meter_values (session_id, sampled_at);
