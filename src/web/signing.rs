//! Pages of the signing area (see `web`).

use actix_web::web;

use super::{StaticFile, Template};

/// This area's templates.
pub const TEMPLATES: &[Template] = &[];

/// This area's static files.
pub const STATIC: &[StaticFile] = &[];

/// Registers this area's pages.
pub fn configure(_cfg: &mut web::ServiceConfig) {}
pub const VENDOR: &[StaticFile] = &[];
