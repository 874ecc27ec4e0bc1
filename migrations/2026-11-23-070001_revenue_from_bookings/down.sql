DELETE FROM revenue_entries WHERE booking_id IS NOT NULL;
DROP INDEX revenue_entries_booking_kind_key;
ALTER TABLE revenue_entries DROP CONSTRAINT revenue_entries_source_check;
ALTER TABLE revenue_entries DROP CONSTRAINT revenue_entries_kind_check;
ALTER TABLE revenue_entries ADD CONSTRAINT revenue_entries_kind_check
    CHECK (kind IN ('charging', 'adjustment', 'booking'));
ALTER TABLE revenue_entries DROP COLUMN booking_id;
ALTER TABLE revenue_entries ALTER COLUMN session_id SET NOT NULL;
