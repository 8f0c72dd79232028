-- Limits that hold under concurrency and across instances, and e-mail addresses in one canonical form.

-- One counter per limited thing (a login throttle per account or client address, a code's resend cool-down, the
-- e-mails and SMS sent per destination and in all): `used` uses until `expires_at`, when a new window starts. A
-- use is reserved by one conditional UPDATE (see db::limits), which the database makes atomic on both SQLite
-- (one writer) and PostgreSQL (the row lock, and the condition re-checked on the row a concurrent update left).
CREATE TABLE rate_limits (
    subject    TEXT PRIMARY KEY,
    used       BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX rate_limits_expiry ON rate_limits (expires_at);

-- Failed logins are now counted in rate_limits (the attempt is reserved before the password is checked).
DROP TABLE login_failures;

-- E-mail addresses: the application now stores only bare addresses (name@example.ro), in lower case. Rows from
-- before that are put in lower case here. Two things cannot be fixed without a person deciding, so the upgrade
-- stops with the name of this check (and changes nothing) when it finds one:
--   * an address that is not bare (a display name, angle brackets, quotes, a list, a comment, spaces, not exactly
--     one @): which mailbox is meant? The first form is how mail was sent to someone else than the holder;
--   * two accounts whose addresses differ only in case: one mailbox owning two accounts.
-- To find them:
--   SELECT id, email, status FROM users WHERE status <> 'erased' AND (LOWER(TRIM(email)) IN (SELECT LOWER(TRIM(email))
--     FROM users GROUP BY LOWER(TRIM(email)) HAVING COUNT(*) > 1) OR email LIKE '%<%' OR email LIKE '% %' …);
-- then correct or merge them (UPDATE users SET email = … WHERE id = …) and start Parafa again.
CREATE TABLE migration_0014_email_refusals (
    email TEXT,
    CONSTRAINT fix_non_bare_or_case_duplicate_emails_see_migration_0014 CHECK (email IS NULL)
);
INSERT INTO migration_0014_email_refusals (email)
SELECT email FROM users
 WHERE status <> 'erased'
   AND (email LIKE '%<%' OR email LIKE '%>%' OR email LIKE '%"%' OR email LIKE '%,%' OR email LIKE '%;%'
        OR email LIKE '%(%' OR email LIKE '%)%' OR email LIKE '%:%' OR email LIKE '%[%'
        OR email LIKE '% %' OR LENGTH(email) - LENGTH(REPLACE(email, '@', '')) <> 1);
INSERT INTO migration_0014_email_refusals (email)
SELECT institution_email FROM institutional_orders
 WHERE institution_email LIKE '%<%' OR institution_email LIKE '%>%' OR institution_email LIKE '%"%'
    OR institution_email LIKE '%,%' OR institution_email LIKE '%;%' OR institution_email LIKE '%(%'
    OR institution_email LIKE '% %' OR LENGTH(institution_email) - LENGTH(REPLACE(institution_email, '@', '')) <> 1;
INSERT INTO migration_0014_email_refusals (email)
SELECT LOWER(TRIM(email)) FROM users GROUP BY LOWER(TRIM(email)) HAVING COUNT(*) > 1;
DROP TABLE migration_0014_email_refusals;

UPDATE users SET email = LOWER(TRIM(email)) WHERE email <> LOWER(TRIM(email));
UPDATE institutional_orders SET institution_email = LOWER(TRIM(institution_email))
 WHERE institution_email <> LOWER(TRIM(institution_email));
-- Whatever path writes a user, one mailbox has one account.
CREATE UNIQUE INDEX users_email_lower ON users (LOWER(email));
