//! The trust documents (issue 18; product rules §2, §9, §11): the PKI disclosure statement the certificates point
//! at (QcPDS), the certificate policy and practice statement, the terms and conditions, the order conditions, the
//! privacy notice and the user guide, each in English and Romanian, every version kept.
//!
//! The sources are `docs/trust/<name>/<version>.<lang>.md` (see its README), compiled into the binary: a version
//! that a holder accepted can never go missing from a deployment. [`current_version`] is the version an acceptance
//! records; [`find`] gives any version, old ones included; [`pdf::render`] lays one out as a PDF with an embedded
//! TrueType font (DejaVu Sans), so the diacritics (ș ț ă î â) survive copying and text extraction.

pub mod font;
pub mod pdf;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::i18n::Lang;

/// A trust document, by its name in the URLs (`/legal/<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DocName {
    /// The PKI disclosure statement (ETSI EN 319 411-1 Annex A).
    Pds,
    /// The certificate policy and certification practice statement.
    Cps,
    /// The terms and conditions of the remote-signature service (the order's first tick, the issuance terms).
    Terms,
    /// The order conditions (the order's second and third ticks).
    OrderConditions,
    /// The privacy notice (enrolment, first login, rekey).
    Privacy,
    /// The user guide.
    UserGuide,
}

impl DocName {
    /// Every document, in the order the index lists them.
    pub const ALL: [DocName; 6] = [
        DocName::Pds,
        DocName::Cps,
        DocName::Terms,
        DocName::OrderConditions,
        DocName::Privacy,
        DocName::UserGuide,
    ];

    /// The name in URLs and in `docs/trust/`.
    pub fn slug(self) -> &'static str {
        match self {
            DocName::Pds => "pds",
            DocName::Cps => "cps",
            DocName::Terms => "terms",
            DocName::OrderConditions => "order-conditions",
            DocName::Privacy => "privacy",
            DocName::UserGuide => "user-guide",
        }
    }

    /// The document named `slug`, if any.
    pub fn parse(slug: &str) -> Option<DocName> {
        DocName::ALL.into_iter().find(|d| d.slug() == slug)
    }
}

/// One source file: a version of a document in one language.
struct Source {
    name: &'static str,
    version: &'static str,
    lang: &'static str,
    text: &'static str,
}

macro_rules! source {
    ($name:literal, $version:literal, $lang:literal) => {
        Source {
            name: $name,
            version: $version,
            lang: $lang,
            text: include_str!(concat!("../../docs/trust/", $name, "/", $version, ".", $lang, ".md")),
        }
    };
}

/// Every version of every document: a new version is a new line here and a new file, never an edited one.
const SOURCES: &[Source] = &[
    source!("pds", "2026-11", "en"),
    source!("pds", "2026-11", "ro"),
    source!("cps", "2026-11", "en"),
    source!("cps", "2026-11", "ro"),
    source!("terms", "2026-11", "en"),
    source!("terms", "2026-11", "ro"),
    source!("order-conditions", "2026-11", "en"),
    source!("order-conditions", "2026-11", "ro"),
    source!("privacy", "2026-11", "en"),
    source!("privacy", "2026-11", "ro"),
    source!("privacy", "2026-12", "en"),
    source!("privacy", "2026-12", "ro"),
    source!("user-guide", "2026-11", "en"),
    source!("user-guide", "2026-11", "ro"),
];

/// What went wrong reading a document's source (a broken file fails the unit tests, not a request).
#[derive(Debug, thiserror::Error)]
pub enum LegalError {
    #[error("{0}: the front matter (---, title, version, effective, ---) is missing or incomplete")]
    FrontMatter(String),
    #[error("{0}: the front matter's version is not the file's")]
    VersionMismatch(String),
    #[error("the PDF could not be laid out: {0}")]
    Pdf(String),
}

/// A block of a document's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "text", rename_all = "snake_case")]
pub enum Block {
    Heading(String),
    Paragraph(String),
    Item(String),
}

/// A version of a document in one language, parsed.
#[derive(Debug, Clone, Serialize)]
pub struct Document {
    pub name: DocName,
    pub lang: &'static str,
    pub title: String,
    pub version: &'static str,
    /// The date the version applies from (`YYYY-MM-DD`).
    pub effective: String,
    pub blocks: Vec<Block>,
}

/// The versions of a document (any language), oldest first.
pub fn versions(name: DocName) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = SOURCES
        .iter()
        .filter(|s| s.name == name.slug())
        .map(|s| s.version)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The document versions the settings name (the privacy notice users acknowledge, the terms holders accept at
/// issuance) exist in both languages: a deployment naming a version it does not carry refuses to start, rather
/// than record consents to a text nobody can read.
pub fn check_settings(settings: &crate::config::Settings) -> Result<(), crate::config::ConfigError> {
    let named = [
        (
            "accounts.privacy_notice_version",
            DocName::Privacy,
            &settings.accounts.privacy_notice_version,
        ),
        (
            "lifecycle.terms_version",
            DocName::Terms,
            &settings.lifecycle.terms_version,
        ),
    ];
    for (setting, doc, version) in named {
        for lang in [Lang::Ro, Lang::En] {
            if find(doc, version, lang).is_none() {
                return Err(crate::config::ConfigError::Invalid {
                    name: setting,
                    reason: format!(
                        "{version:?} is not a version of docs/trust/{}/ in {} (there are: {})",
                        doc.slug(),
                        lang.code(),
                        versions(doc).join(", ")
                    ),
                });
            }
        }
    }
    Ok(())
}

/// The version in force: the newest (versions are `YYYY-MM`, so they sort as text). Every document has one.
pub fn current_version(name: DocName) -> &'static str {
    versions(name).last().copied().unwrap_or("")
}

/// A version of a document in a language, `None` when there is no such version.
pub fn find(name: DocName, version: &str, lang: Lang) -> Option<Result<Document, LegalError>> {
    SOURCES
        .iter()
        .find(|s| s.name == name.slug() && s.version == version && s.lang == lang.code())
        .map(|s| parse(name, s))
}

/// The current version of a document in a language.
pub fn current(name: DocName, lang: Lang) -> Result<Document, LegalError> {
    match find(name, current_version(name), lang) {
        Some(doc) => doc,
        None => Err(LegalError::FrontMatter(format!("{}.{}", name.slug(), lang.code()))),
    }
}

fn parse(name: DocName, s: &Source) -> Result<Document, LegalError> {
    let file = format!("{}/{}.{}.md", s.name, s.version, s.lang);
    let rest = s
        .text
        .strip_prefix("---\n")
        .ok_or_else(|| LegalError::FrontMatter(file.clone()))?;
    let (head, body) = rest
        .split_once("\n---\n")
        .ok_or_else(|| LegalError::FrontMatter(file.clone()))?;
    let field = |key: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(':')))
            .map(|v| v.trim().to_owned())
            .ok_or_else(|| LegalError::FrontMatter(file.clone()))
    };
    let (title, version, effective) = (field("title")?, field("version")?, field("effective")?);
    if version != s.version {
        return Err(LegalError::VersionMismatch(file));
    }
    Ok(Document {
        name,
        lang: s.lang,
        title,
        version: s.version,
        effective,
        blocks: blocks(body),
    })
}

/// The body's blocks: `#`/`##` headings, `- ` items (continued by indented lines), paragraphs (lines up to a blank
/// line or another block). Inline code marks are dropped: the text reads the same on a page and in a PDF.
fn blocks(body: &str) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    let mut open = false; // whether the last block takes continuation lines
    for line in body.lines() {
        let line = line.replace('`', "");
        let trimmed = line.trim();
        if trimmed.is_empty() {
            open = false;
        } else if let Some(h) = trimmed.strip_prefix("## ").or_else(|| trimmed.strip_prefix("# ")) {
            out.push(Block::Heading(h.trim().to_owned()));
            open = false;
        } else if let Some(item) = trimmed.strip_prefix("- ") {
            out.push(Block::Item(item.to_owned()));
            open = true;
        } else if open && (line.starts_with("  ") || matches!(out.last(), Some(Block::Paragraph(_)))) {
            match out.last_mut() {
                Some(Block::Item(t) | Block::Paragraph(t)) => {
                    t.push(' ');
                    t.push_str(trimmed);
                }
                _ => out.push(Block::Paragraph(trimmed.to_owned())),
            }
        } else {
            out.push(Block::Paragraph(trimmed.to_owned()));
            open = true;
        }
    }
    out
}

/// The PDFs rendered so far, by document, version and language: each is laid out once per process (a source
/// never changes while the binary runs).
#[derive(Default)]
pub struct PdfCache {
    pdfs: Mutex<HashMap<PdfKey, Arc<Vec<u8>>>>,
}

/// A PDF's document, version and language.
type PdfKey = (DocName, &'static str, &'static str);

impl PdfCache {
    /// The PDF of a version of a document (`None`: no such version), rendered at the first call. Blocking: call it
    /// off the async runtime.
    pub fn pdf(&self, name: DocName, version: &str, lang: Lang) -> Option<Result<Arc<Vec<u8>>, LegalError>> {
        let doc = match find(name, version, lang)? {
            Ok(doc) => doc,
            Err(e) => return Some(Err(e)),
        };
        let key = (name, doc.version, doc.lang);
        if let Some(hit) = self.pdfs.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Some(Ok(hit));
        }
        let rendered = pdf::render(
            &doc,
            &crate::i18n::text(lang, "legal.version"),
            &crate::i18n::text(lang, "legal.effective"),
        )
        .map(Arc::new);
        if let (Ok(bytes), Ok(mut m)) = (&rendered, self.pdfs.lock()) {
            m.insert(key, bytes.clone());
        }
        Some(rendered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_parses_with_its_version_in_both_languages() {
        for s in SOURCES {
            let name = DocName::parse(s.name).expect("a known document");
            let doc = parse(name, s).unwrap_or_else(|e| panic!("{e}"));
            assert!(!doc.blocks.is_empty(), "{}: empty", s.name);
            let other = if s.lang == "en" { "ro" } else { "en" };
            assert!(
                SOURCES
                    .iter()
                    .any(|o| o.name == s.name && o.version == s.version && o.lang == other),
                "{} {} has no {other} twin",
                s.name,
                s.version
            );
        }
        for name in DocName::ALL {
            assert!(!current_version(name).is_empty(), "{name:?} has no version");
        }
    }

    #[test]
    fn blocks_join_continued_lines() {
        let b = blocks("## H\nline one\nline two\n\n- item\n  more\n- next\nafter\n");
        assert_eq!(
            b,
            vec![
                Block::Heading("H".into()),
                Block::Paragraph("line one line two".into()),
                Block::Item("item more".into()),
                Block::Item("next".into()),
                Block::Paragraph("after".into()),
            ]
        );
    }

    #[test]
    fn the_configured_versions_are_published() {
        let s = crate::config::Settings::default();
        assert!(versions(DocName::Privacy).contains(&s.accounts.privacy_notice_version.as_str()));
        assert!(versions(DocName::Terms).contains(&s.lifecycle.terms_version.as_str()));
    }
}
