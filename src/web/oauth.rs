//! The OAuth 2.0 consent page's template and script (the handlers are `oauth::routes`): the application's name,
//! what it asks (the credential, the number of signatures, the documents' labels), "Allow" with the TOTP code for a
//! signature, "Refuse".

use super::{StaticFile, Template};

/// This area's templates.
pub const TEMPLATES: &[Template] = &[("oauth/consent.html", include_str!("templates/oauth/consent.html"))];

/// This area's static files.
pub const STATIC: &[StaticFile] = &[(
    "oauth.js",
    "text/javascript; charset=utf-8",
    include_bytes!("static/oauth.js"),
)];
