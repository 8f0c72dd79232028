//! Documents: CMS SignedData building (shared by the signed issuance evidence, CAdES and PAdES).

pub mod cades;
pub use crate::cms;
pub mod jobs;
pub mod pades;
pub mod routes;
pub mod signer;
pub mod verify;

use std::sync::Arc;

use crate::admission::Budget;
use crate::ca::Ca;
use crate::clock::SystemClock;
use crate::config::Settings;
use crate::db::Db;
use crate::hsm::Hsm;
use crate::tsa::Tsa;

/// What signing, verifying and the signing jobs use: the application context's part they need, handed in by the
/// handlers (`state.documents()`) and by the lifecycle's scheduler. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub clock: Arc<SystemClock>,
    pub hsm: Arc<Hsm>,
    /// The CA, for the certificates, CRLs and OCSP answers embedded for long-term validation.
    pub ca: Arc<Ca>,
    /// The timestamp authority of signatures' and documents' timestamps.
    pub tsa: Arc<Tsa>,
    /// The trusted list, whose services say which signatures are qualified.
    pub trust: Arc<crate::trust::TrustList>,
    /// The memory budget that parsing and signing large files reserve from.
    pub admission: Arc<Budget>,
    /// Commits signatures and their quota debit in groups (see [`crate::db::signing::Ledger`]).
    pub ledger: crate::db::signing::Ledger,
}
