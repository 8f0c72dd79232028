//! CMS SignedData (RFC 5652) built around a signature made in the HSM.
