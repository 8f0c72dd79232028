//! The invoice PDF of a paid order.
