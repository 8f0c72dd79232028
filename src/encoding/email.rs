//! E-mail addresses as Parafa accepts them: one bare addr-spec (RFC 5322 §3.4.1, `local@domain`), checked by the
//! `email_address` crate and then narrowed, and stored in one canonical form.
//!
//! Every address that comes from outside (enrolment, the CLI, operators, institutional orders, login, recovery,
//! the registry search) goes through [`canonical`], so the address that is stored, mailed, searched and written
//! into a certificate's subjectAltName is always the bare mailbox: never a display name (`"ceo@bank.ro"
//! <attacker@evil.test>` would send the mail to the attacker and put the display string in the certificate), a
//! list (`a@b.ro,c@d.ro` could never be delivered and would be retried for ever), a comment or a route.
//!
//! What is refused on purpose, although RFC 5322 allows it:
//! - quoted local parts (`"a b"@example.ro`): nobody needs them, and they are where display-name tricks hide;
//! - domain literals (`a@[192.0.2.1]`) and single-label domains (`a@localhost`): not public mailboxes;
//! - non-ASCII addresses: the certificate's rfc822Name is an IA5String (RFC 5280 §4.2.1.6).
//!
//! The canonical form is the whole address in lower case. RFC 5321 lets a server treat the local part as
//! case-sensitive, but no mailbox provider does, and a case-sensitive local part would let one mailbox own
//! several accounts (`Ana@x.ro`, `ana@x.ro`); the database also keeps the lower-cased address unique.

use email_address::{EmailAddress, Options};

/// Longest address accepted (RFC 5321 §4.5.3.1.3: a path of 256 octets including the angle brackets).
pub const MAX_LEN: usize = 254;
/// Longest local part (RFC 5321 §4.5.3.1.1).
pub const MAX_LOCAL_LEN: usize = 64;

/// Why an address was refused (for logs and tests; users see the caller's message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("no address was given")]
    Empty,
    #[error("the address is too long")]
    TooLong,
    #[error("only plain ASCII addresses are accepted")]
    NotAscii,
    #[error("give the bare address (name@example.ro), without a name, quotes, brackets, comments or a list")]
    NotBare,
    #[error("the domain must be a public domain name such as example.ro")]
    BadDomain,
}

/// The canonical form of a bare e-mail address (surrounding spaces ignored), or why it is not one.
pub fn canonical(raw: &str) -> Result<String, EmailError> {
    let address = raw.trim();
    if address.is_empty() {
        return Err(EmailError::Empty);
    }
    if address.len() > MAX_LEN {
        return Err(EmailError::TooLong);
    }
    if !address.is_ascii() {
        return Err(EmailError::NotAscii);
    }
    // Anything a bare dot-atom addr-spec cannot hold: display names and angle brackets, quoted strings, comments,
    // lists, routes, spaces and control characters. The crate accepts some of these forms (quoted local parts,
    // display text when asked); refusing them here does not depend on its options.
    if address.chars().any(|c| {
        c.is_ascii_control()
            || matches!(
                c,
                ' ' | '"' | '<' | '>' | '(' | ')' | ',' | ';' | ':' | '[' | ']' | '\\'
            )
    }) || address.matches('@').count() != 1
    {
        return Err(EmailError::NotBare);
    }
    if address
        .split_once('@')
        .is_some_and(|(local, _)| local.len() > MAX_LOCAL_LEN)
    {
        return Err(EmailError::TooLong);
    }
    let options = Options::default()
        .without_display_text()
        .without_domain_literal()
        .with_minimum_sub_domains(2);
    let parsed = EmailAddress::parse_with_options(address, options).map_err(|_| EmailError::NotBare)?;
    if !is_host_name(parsed.domain()) {
        return Err(EmailError::BadDomain);
    }
    Ok(address.to_ascii_lowercase())
}

/// Whether a lower- or upper-case name is a DNS host name of at least two labels: letters, digits and inner
/// hyphens, at most 63 characters a label, and a top-level label that is not all digits (not an IP address).
fn is_host_name(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| !tld.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::{canonical, EmailError};

    #[test]
    fn bare_addresses_are_accepted_in_lower_case() {
        assert_eq!(canonical(" Ana.Pop+sig@Example.RO ").unwrap(), "ana.pop+sig@example.ro");
        assert_eq!(
            canonical("o'brien@mail.example.co.uk").unwrap(),
            "o'brien@mail.example.co.uk"
        );
    }

    #[test]
    fn display_names_lists_comments_and_quotes_are_refused() {
        for hostile in [
            "\"ceo@bank.ro\"<attacker@evil.test>",
            "\"ceo@bank.ro\" <attacker@evil.test>",
            "CEO <ceo@bank.ro>",
            "<ceo@bank.ro>",
            "ceo@bank.ro,attacker@evil.test",
            "ceo@bank.ro;attacker@evil.test",
            "ceo@bank.ro (the boss)",
            "ceo(the boss)@bank.ro",
            "\"ceo\"@bank.ro",
            "\"a@b\"@bank.ro",
            "@relay.test:ceo@bank.ro",
            "ceo@bank.ro\nBcc: attacker@evil.test",
            "ceo@@bank.ro",
            "ceo@bank.ro@evil.test",
        ] {
            assert_eq!(canonical(hostile), Err(EmailError::NotBare), "{hostile:?}");
        }
    }

    #[test]
    fn odd_domains_and_sizes_are_refused() {
        assert!(canonical("a@[192.0.2.1]").is_err());
        assert_eq!(canonical("a@localhost"), Err(EmailError::NotBare));
        assert_eq!(canonical("a@192.0.2.1"), Err(EmailError::BadDomain));
        assert_eq!(canonical("a@ex!ample.ro"), Err(EmailError::BadDomain));
        assert_eq!(canonical("a@-example.ro"), Err(EmailError::NotBare));
        assert!(canonical("a@example..ro").is_err());
        assert!(canonical(".a@example.ro").is_err());
        assert_eq!(canonical("ană@example.ro"), Err(EmailError::NotAscii));
        assert_eq!(
            canonical(&format!("{}@example.ro", "a".repeat(65))),
            Err(EmailError::TooLong)
        );
        assert_eq!(
            canonical(&format!("a@{}.ro", "b".repeat(260))),
            Err(EmailError::TooLong)
        );
        assert_eq!(canonical("  "), Err(EmailError::Empty));
        assert_eq!(canonical("no-at-sign.example.ro"), Err(EmailError::NotBare));
    }
}
