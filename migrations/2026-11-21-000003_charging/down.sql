DROP TABLE revenue_entries;
DROP TABLE meter_values;
DROP TABLE charging_sessions;
DROP SEQUENCE ocpp_transaction_id_seq;
