ALTER TABLE charging_sessions SET (fillfactor = 80);
