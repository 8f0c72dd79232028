-- The sealer's page of unsealed rows (`WHERE … IS NULL ORDER BY at, id LIMIT n`) was planned by SQLite on the
-- `UNIQUE (seq)` index (an equality on a unique index looks like one row; NULLs are not unique) and then sorted every
-- unsealed row for each page, so a backlog of n rows cost n². The partial index now keys on `hash`, which no other
-- index covers and which the sealer sets together with `seq`: the page is read from it in order on both databases.
DROP INDEX audit_events_unsealed;
CREATE INDEX audit_events_unsealed ON audit_events (at, id) WHERE hash IS NULL;
