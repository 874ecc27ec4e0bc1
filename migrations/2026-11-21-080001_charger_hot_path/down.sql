ALTER TABLE connectors RESET (fillfactor);
ALTER TABLE chargers RESET (fillfactor);
ALTER TABLE chargers DROP COLUMN password_mac;
