-- meter_values is an append-only log, written only by the meter writer with a charger and a
-- session it has just read in the same transaction, and nothing here deletes chargers or
-- sessions. Its two foreign keys bought no safety but cost a locking lookup into chargers and
-- charging_sessions for every sampled value: measured on 18,000 rows, 303 ms with them and
-- 83 ms without, the largest share of PostgreSQL's work under a fleet's meter values.
ALTER TABLE meter_values DROP CONSTRAINT meter_values_charger_id_fkey;
ALTER TABLE meter_values DROP CONSTRAINT meter_values_session_id_fkey;

-- Nothing reads meter values by charger (sessions read theirs through meter_values_session_idx;
-- a charger's raw traffic is in the OCPP message log), so the charger index only cost an
-- index entry per sampled value: 18 % of the insert's time, measured on 57,000 rows.
DROP INDEX meter_values_charger_idx;

-- Every meter update rewrites its session's running energy and cost, never an indexed column:
-- room on each page keeps those heap-only updates.
ALTER TABLE charging_sessions SET (fillfactor = 80);
