DROP TABLE reservations;
DROP TABLE queue_entries;
ALTER TABLE charging_sessions DROP CONSTRAINT charging_sessions_booking_fk;
DROP TABLE bookings;
-- btree_gist stays: other objects in the database may use it, and it is harmless.
