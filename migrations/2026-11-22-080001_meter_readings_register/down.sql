ALTER TABLE meter_readings DROP COLUMN energy_register_wh;
