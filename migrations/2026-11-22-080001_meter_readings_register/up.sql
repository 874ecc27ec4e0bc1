-- Each reading's energy register (Wh, as normalised from Energy.Active.Import.Register), so the
-- readings themselves say how far a session's meter got. A session's running totals are written
-- at most every few seconds (KILOWATT_SESSION_TOTALS_SECONDS); a session settled without a final
-- meter reading is billed from its latest stored reading, not from those totals. Readings stored
-- before this column have it empty; their sessions' totals were written at every reading.
ALTER TABLE meter_readings ADD COLUMN energy_register_wh BIGINT;
