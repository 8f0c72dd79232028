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

/// A signed file as it is sent: a head shared with what was signed, never copied (a PDF's original, to which the
/// signature is appended; empty for a `.p7s`), and the tail that follows it.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub head: Arc<Vec<u8>>,
    pub tail: Vec<u8>,
}

impl Output {
    /// A file made whole, with no head.
    pub fn whole(bytes: Vec<u8>) -> Output {
        Output {
            head: Arc::default(),
            tail: bytes,
        }
    }

    /// The file's length.
    pub fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The file's two parts, in order.
    pub fn parts(&self) -> [&[u8]; 2] {
        [&self.head, &self.tail]
    }

    /// The file in one piece (the head is copied unless this was its last holder).
    pub fn into_vec(self) -> Vec<u8> {
        let Output { head, tail } = self;
        if head.is_empty() {
            return tail;
        }
        let mut out = Arc::try_unwrap(head).unwrap_or_else(|shared| shared.as_ref().clone());
        out.extend_from_slice(&tail);
        out
    }
}
