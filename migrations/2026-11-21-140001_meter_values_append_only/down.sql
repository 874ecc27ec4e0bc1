ALTER TABLE charging_sessions RESET (fillfactor);
CREATE INDEX meter_values_charger_idx ON meter_values (charger_id, id DESC);
ALTER TABLE meter_values ADD CONSTRAINT meter_values_session_id_fkey
    FOREIGN KEY (session_id) REFERENCES charging_sessions(id);
ALTER TABLE meter_values ADD CONSTRAINT meter_values_charger_id_fkey
    FOREIGN KEY (charger_id) REFERENCES chargers(id);
