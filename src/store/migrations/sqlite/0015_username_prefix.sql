-- Deriving a username reads the names in use within a byte range (base .. base + ':'); the
-- reservations' primary key serves it there, this index serves it for requests.
CREATE INDEX requests_username ON requests (username) WHERE username IS NOT NULL;
