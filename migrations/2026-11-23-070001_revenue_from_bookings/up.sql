-- Booking fees are revenue too: an owner's revenue is every row of revenue_entries, whether a
-- session or a booking earned it. A booking's fee is recorded when it is paid ('booking') and,
-- if a cancellation refunds it, taken back then ('booking_refund', a negative amount), each on
-- its own day.
ALTER TABLE revenue_entries ALTER COLUMN session_id DROP NOT NULL;
ALTER TABLE revenue_entries ADD COLUMN booking_id BIGINT REFERENCES bookings (id);
ALTER TABLE revenue_entries DROP CONSTRAINT revenue_entries_kind_check;
ALTER TABLE revenue_entries ADD CONSTRAINT revenue_entries_kind_check
    CHECK (kind IN ('charging', 'adjustment', 'booking', 'booking_refund'));
-- Each row is a session's or a booking's, as its kind says.
ALTER TABLE revenue_entries ADD CONSTRAINT revenue_entries_source_check CHECK (
    CASE WHEN kind IN ('charging', 'adjustment') THEN session_id IS NOT NULL AND booking_id IS NULL
         ELSE booking_id IS NOT NULL AND session_id IS NULL END);
CREATE UNIQUE INDEX revenue_entries_booking_kind_key ON revenue_entries (booking_id, kind)
    WHERE booking_id IS NOT NULL;

-- The fees and refunds of bookings made before this migration, on the days they happened.
INSERT INTO revenue_entries (station_id, owner_id, booking_id, kind, amount, created_at)
SELECT st.id, st.owner_id, b.id, 'booking', b.fee, b.created_at
FROM bookings b JOIN chargers c ON c.id = b.charger_id JOIN stations st ON st.id = c.station_id
WHERE b.fee > 0;
INSERT INTO revenue_entries (station_id, owner_id, booking_id, kind, amount, created_at)
SELECT st.id, st.owner_id, b.id, 'booking_refund', -b.refund_amount, coalesce(b.cancelled_at, b.updated_at)
FROM bookings b JOIN chargers c ON c.id = b.charger_id JOIN stations st ON st.id = c.station_id
WHERE b.refund_amount > 0;
