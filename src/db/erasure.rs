//! The erasure of a person (GDPR art. 17, product rules §9), across the tables that hold what they gave: what the
//! law does not oblige Parafa to keep is deleted or blanked in one transaction; certificates, the signature ledger,
//! orders and the audit trail stay, under an anonymous id.

use super::DbError;

/// Erases the person `user_id`, known by `email` and `phone`, inside the caller's transaction: the account keeps
/// only placeholders, their pairings, consents, codes, sessions and tokens go, their contact messages' texts are
/// blanked, their signature activations and credentials end, and the messages to them are dropped or blanked,
/// except the revocation notices still to be sent (the person is told their certificates ended).
pub async fn erase_person(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
    email: &str,
    phone: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE users SET email = $1, given_name = 'erased', surname = 'erased', phone = '', password_hash = '',
                status = 'erased', two_factor = 'off', two_factor_postponed = NULL, two_factor_until = NULL,
                privacy_ack_at = NULL
         WHERE id = $2",
    )
    .bind(format!("erased-{user_id}@invalid"))
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    for sql in [
        "DELETE FROM totp_pairings WHERE user_id = $1",
        "DELETE FROM consents WHERE user_id = $1",
        "DELETE FROM one_time_codes WHERE user_id = $1",
        "DELETE FROM flows WHERE user_id = $1",
        "DELETE FROM web_sessions WHERE user_id = $1",
        "DELETE FROM access_tokens WHERE user_id = $1",
        // The contact form's texts may hold anything the person wrote; the numbers and dates stay for the records.
        "UPDATE contact_messages SET body = 'erased', answer = CASE WHEN answer IS NULL THEN NULL ELSE 'erased' END
         WHERE user_id = $1",
        "UPDATE sads SET remaining = 0 WHERE user_id = $1",
        "UPDATE credentials SET status = 'revoked' WHERE user_id = $1",
    ] {
        sqlx::query(sql).bind(user_id).execute(&mut *conn).await?;
    }
    // An unsent e-mail's attachments (an order note names the person) go with it, or with its body below.
    sqlx::query(
        "DELETE FROM outbox_attachments WHERE outbox_id IN
           (SELECT id FROM outbox WHERE (recipient = $1 OR recipient = $2) AND kind <> 'certificate_revoked')",
    )
    .bind(email)
    .bind(phone)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM outbox WHERE (recipient = $1 OR recipient = $2) AND status = 'pending'
           AND kind <> 'certificate_revoked'",
    )
    .bind(email)
    .bind(phone)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE outbox SET recipient = 'erased', body = ''
         WHERE (recipient = $1 OR recipient = $2) AND NOT (status = 'pending' AND kind = 'certificate_revoked')",
    )
    .bind(email)
    .bind(phone)
    .execute(conn)
    .await?;
    Ok(())
}
