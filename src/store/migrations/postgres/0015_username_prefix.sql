-- Deriving a username reads the names in use within a byte range (base .. base + ':'); these
-- indexes serve that range bytewise whatever the database's collation.
CREATE INDEX username_reservations_bytes ON username_reservations (username COLLATE "C");
CREATE INDEX requests_username_bytes ON requests (username COLLATE "C") WHERE username IS NOT NULL;
