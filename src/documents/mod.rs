//! Documents: CMS SignedData building (shared by the signed issuance evidence, CAdES and PAdES).

pub mod cades;
pub use crate::cms;
pub mod jobs;
pub mod pades;
pub mod routes;
pub mod signer;
pub mod verify;
