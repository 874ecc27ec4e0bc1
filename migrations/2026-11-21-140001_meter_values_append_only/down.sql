ALTER TABLE charging_sessions RESET (fillfactor);
ALTER TABLE meter_values ADD CONSTRAINT meter_values_session_id_fkey
    FOREIGN KEY (session_id) REFERENCES charging_sessions(id);
ALTER TABLE meter_values ADD CONSTRAINT meter_values_charger_id_fkey
    FOREIGN KEY (charger_id) REFERENCES chargers(id);
