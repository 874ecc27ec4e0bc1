-- A MeterValues is stored as one row, its sampled values together in one JSON array, instead of
-- one row per sampled value: a fleet's meter traffic costs PostgreSQL a third of the tuples and
-- index entries it did (three sampled values per MeterValues is typical). `meter_values` stays
-- as a view with the old columns, one row per sampled value, for anyone querying the history.
CREATE TABLE meter_readings (
    id               BIGSERIAL PRIMARY KEY,
    charger_id       BIGINT NOT NULL,
    connector_number INTEGER NOT NULL CHECK (connector_number >= 0),
    -- The session and transaction they belong to, when known.
    session_id       BIGINT,
    transaction_id   INTEGER,
    -- The latest timestamp among the sampled values.
    sampled_at       TIMESTAMPTZ NOT NULL,
    -- [{"sampled_at", "measurand", "phase", "unit", "context", "location", "format",
    --   "raw_value", "value"}, ...]: each value exactly as the charger sent it (raw_value) and
    -- normalised to its base unit (value) when it could be read; absent keys are NULL, and an
    -- absent sampled_at is the reading's.
    samples          JSON NOT NULL,
    received_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Before, the sampled values of one MeterValues shared their charger, connector, transaction
-- and receipt time; each such group becomes one reading.
INSERT INTO meter_readings (charger_id, connector_number, session_id, transaction_id, sampled_at, samples, received_at)
SELECT charger_id, connector_number, session_id, transaction_id, max(sampled_at),
       json_strip_nulls(json_agg(json_build_object(
           'sampled_at', sampled_at, 'measurand', measurand, 'phase', phase, 'unit', unit,
           'context', context, 'location', location, 'format', format, 'raw_value', raw_value,
           'value', value) ORDER BY id)),
       received_at
FROM meter_values
GROUP BY charger_id, connector_number, session_id, transaction_id, received_at
ORDER BY min(id);

CREATE INDEX meter_readings_session_idx ON meter_readings (session_id, sampled_at);

DROP TABLE meter_values;

CREATE VIEW meter_values AS
SELECT r.id AS reading_id, s.sample_number, r.charger_id, r.connector_number, r.session_id,
       r.transaction_id, coalesce(s.sampled_at, r.sampled_at) AS sampled_at, s.measurand, s.phase,
       s.unit, s.context, s.location, s.format, s.raw_value, s.value, r.received_at
FROM meter_readings r
CROSS JOIN LATERAL ROWS FROM (json_to_recordset(r.samples) AS (
    sampled_at TIMESTAMPTZ, measurand TEXT, phase TEXT, unit TEXT, context TEXT, location TEXT,
    format TEXT, raw_value TEXT, value NUMERIC
)) WITH ORDINALITY AS s(sampled_at, measurand, phase, unit, context, location, format, raw_value, value, sample_number);
