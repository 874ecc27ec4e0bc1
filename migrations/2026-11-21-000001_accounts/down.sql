DROP TABLE payments;
DROP TRIGGER wallet_entries_no_update ON wallet_entries;
DROP TABLE wallet_entries;
DROP FUNCTION wallet_entries_append_only();
DROP TABLE wallets;
DROP TABLE rfid_cards;
DROP TABLE login_attempts;
DROP TABLE auth_tokens;
DROP TABLE users;
