DROP TABLE connector_status_history;
DROP TABLE connectors;
DROP TABLE chargers;
DROP TABLE stations;
