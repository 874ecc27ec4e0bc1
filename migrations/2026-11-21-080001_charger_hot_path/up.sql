-- A fast keyed hash of a charger's Basic-auth password, so a storm of reconnecting chargers
-- is not held up by one Argon2 verification each. Written by the server after a successful
-- Argon2 verification of a long (high-entropy) password:
--   v1$<key id>$<fingerprint of password_hash>$<HMAC-SHA256, hex>
-- It only counts while the server key and password_hash it was made with are still current;
-- otherwise the handshake falls back to password_hash (Argon2) and writes a new one.
ALTER TABLE chargers ADD COLUMN password_mac TEXT;

-- Chargers and connectors are rewritten all day (presence, last-seen, boots, statuses), never
-- in an indexed column: room on each page lets those be heap-only updates, which touch no
-- index and write less WAL.
ALTER TABLE chargers SET (fillfactor = 70);
ALTER TABLE connectors SET (fillfactor = 70);
