//! The work one reading of a file may do: every walk of the object graph charges the [`Budget`], and a reading
//! that would exceed it is refused as too complex rather than left to run.

use std::cell::Cell;

use super::{Bad, Limits};

/// What one reading ([`Doc`](super::Doc)) has spent of its [`Limits`]. Every walk of the object graph charges it:
/// each object fetched and each tree node queued is a node, each byte lexed or searched is a scanned byte, each
/// byte a filter produces is a decoded byte. Raw stream data is borrowed from the file, never copied, so what a
/// reading copies is what it lexes and decodes. A parse is charged once it is done, so a reading overruns the scan
/// budget by at most one object (itself bounded by the file or a decoded stream).
pub(super) struct Budget {
    limits: Limits,
    nodes: Cell<usize>,
    scanned: Cell<usize>,
    /// Bytes that may be scanned: the scan factor times what there is to read (the file and the decoded streams).
    scan_allowance: Cell<usize>,
    decoded: Cell<usize>,
}

/// Scanning allowed beyond the scan factor's share, for tiny files.
pub(super) const SCAN_SLACK: usize = 1024 * 1024;

impl Budget {
    pub(super) fn new(limits: &Limits, file_len: usize) -> Budget {
        Budget {
            limits: *limits,
            nodes: Cell::new(0),
            scanned: Cell::new(0),
            scan_allowance: Cell::new(file_len.saturating_mul(limits.scan_factor).saturating_add(SCAN_SLACK)),
            decoded: Cell::new(0),
        }
    }

    /// One more object fetched or tree node queued.
    pub(super) fn node(&self) -> Result<(), Bad> {
        self.nodes.set(self.nodes.get() + 1);
        if self.nodes.get() > self.limits.max_nodes {
            return Err(Bad::OverBudget(crate::text!(
                "error.pdf.makes_reader_visit_more_than",
                max_nodes = self.limits.max_nodes
            )));
        }
        Ok(())
    }

    /// A tree node at `depth` (the root is 0).
    pub(super) fn depth(&self, depth: usize) -> Result<(), Bad> {
        if depth > self.limits.max_depth {
            return Err(Bad::OverBudget(crate::text!(
                "error.pdf.page_or_form_tree_more",
                max_depth = self.limits.max_depth
            )));
        }
        Ok(())
    }

    /// Bytes still allowed to be scanned.
    pub(super) fn scan_left(&self) -> usize {
        self.scan_allowance.get().saturating_sub(self.scanned.get())
    }

    /// `bytes` more lexed or searched.
    pub(super) fn scan(&self, bytes: usize) -> Result<(), Bad> {
        self.scanned.set(self.scanned.get().saturating_add(bytes));
        if self.scanned.get() > self.scan_allowance.get() {
            return Err(self.scan_exhausted());
        }
        Ok(())
    }

    /// The refusal of a reading that ran out of scanning.
    pub(super) fn scan_exhausted(&self) -> Bad {
        Bad::OverBudget(crate::text!(
            "error.pdf.reading_means_scanning_more_than",
            scan_factor = self.limits.scan_factor
        ))
    }

    /// The most the next stream may decode to: its own limit, or what is left of the reading's.
    pub(super) fn decode_cap(&self) -> usize {
        self.limits
            .max_decoded_stream
            .min(self.limits.max_decoded_total.saturating_sub(self.decoded.get()))
    }

    /// `bytes` decoded: they count against the decoding limit and may themselves be scanned.
    pub(super) fn decoded(&self, bytes: usize) -> Result<(), Bad> {
        self.decoded.set(self.decoded.get().saturating_add(bytes));
        if self.decoded.get() > self.limits.max_decoded_total {
            return Err(Bad::OverBudget(crate::text!(
                "error.pdf.compressed_streams_decode_more_than",
                max_decoded_total = self.limits.max_decoded_total
            )));
        }
        self.scan_allowance.set(
            self.scan_allowance
                .get()
                .saturating_add(bytes.saturating_mul(self.limits.scan_factor)),
        );
        Ok(())
    }

    /// What the reading has spent: (nodes, bytes scanned, bytes decoded).
    #[cfg(test)]
    pub(super) fn spent(&self) -> (usize, usize, usize) {
        (self.nodes.get(), self.scanned.get(), self.decoded.get())
    }

    /// The bytes the reading may scan, as of now.
    #[cfg(test)]
    pub(super) fn allowance(&self) -> usize {
        self.scan_allowance.get()
    }
}

#[cfg(test)]
mod tests {
    use crate::hostile::{deep_field_tree, deep_page_tree};
    use crate::pdf::testing::{limits, pdf, too_complex, TWO_PAGES};
    use crate::pdf::{inspect, signature_fields, Limits};

    #[test]
    fn every_tree_node_direct_or_not_is_charged_to_the_budget() {
        let direct = vec!["<< /T (f) >>"; 100].join(" ");
        let catalog = format!("<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [{direct}] >> >>");
        let file = pdf(&[&catalog, TWO_PAGES[1], TWO_PAGES[2], TWO_PAGES[3]]);
        let tight = Limits {
            max_nodes: 50,
            ..limits()
        };
        assert!(too_complex(inspect(&file, &tight)).contains("more than 50 objects"));
        assert!(too_complex(signature_fields(&file, &tight)).contains("more than 50 objects"));
        assert!(inspect(&file, &limits()).is_ok());
    }

    #[test]
    fn trees_deeper_than_the_budget_are_refused() {
        assert!(inspect(&deep_page_tree(10), &limits()).is_ok());
        assert!(too_complex(inspect(&deep_page_tree(100), &limits())).contains("64 levels deep"));
        assert!(inspect(&deep_field_tree(10), &limits()).is_ok());
        assert!(too_complex(inspect(&deep_field_tree(100), &limits())).contains("64 levels deep"));
        assert!(too_complex(signature_fields(&deep_field_tree(100), &limits())).contains("64 levels deep"));
    }
}
