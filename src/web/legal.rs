//! The trust documents' pages and PDFs (issue 18, [`crate::legal`]), public, no login:
//! - `/legal`: the index;
//! - `/legal/{name}[?lang=ro|en]`: the version in force, in the asked language or the page's;
//! - `/legal/{name}/v/{version}[?lang=…]`: any version, old ones included;
//! - `/legal/{name}-{lang}.pdf` and `/legal/{name}/v/{version}/{name}-{lang}.pdf`: the PDFs;
//! - `/pki/pds-en.pdf`, `/pki/pds-ro.pdf`: the PKI disclosure statement at the URLs every certificate's QcPDS
//!   statement names.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use minijinja::{context, Value};

use super::{Page, PageError, Template};
use crate::error::ApiError;
use crate::i18n::Lang;
use crate::legal::{self, DocName, PdfCache};
use crate::text;

/// This area's templates.
pub const TEMPLATES: &[Template] = &[
    ("legal/index.html", include_str!("templates/legal/index.html")),
    ("legal/document.html", include_str!("templates/legal/document.html")),
];

/// Registers this area's pages and PDFs.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/legal").route(web::get().to(index)))
        .service(web::resource("/legal/{name}").route(web::get().to(current)))
        .service(web::resource("/legal/{name}/v/{version}").route(web::get().to(version)))
        .service(web::resource("/legal/{name}/v/{version}/{file}").route(web::get().to(version_pdf)))
        .service(web::resource("/pki/pds-{lang}.pdf").route(web::get().to(pds_pdf)));
}

#[derive(serde::Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

fn no_such_document() -> ApiError {
    ApiError::not_found(text!("error.http.no_such_file"))
}

/// The language asked by `?lang=`, else the page's.
fn lang_of(page: &Page, q: &LangQuery) -> Lang {
    q.lang.as_deref().and_then(Lang::parse).unwrap_or(page.lang)
}

async fn index(page: Page) -> HttpResponse {
    let docs: Vec<Value> = DocName::ALL
        .into_iter()
        .map(|d| {
            context! {
                name => d.slug(),
                version => legal::current_version(d),
                versions => legal::versions(d),
            }
        })
        .collect();
    page.render("legal/index.html", context! { docs => docs })
}

async fn current(
    page: Page,
    cache: web::Data<PdfCache>,
    path: web::Path<String>,
    q: web::Query<LangQuery>,
) -> Result<HttpResponse, PageError> {
    let name = path.into_inner();
    // `/legal/{name}-{lang}.pdf`: the PDF of the version in force.
    if let Some((doc, lang)) = name.strip_suffix(".pdf").and_then(pdf_file) {
        return pdf(&page, cache, doc, legal::current_version(doc), lang).await;
    }
    let doc = DocName::parse(&name).ok_or_else(|| page.error(no_such_document()))?;
    show(page, doc, legal::current_version(doc), &q)
}

async fn version(
    page: Page,
    path: web::Path<(String, String)>,
    q: web::Query<LangQuery>,
) -> Result<HttpResponse, PageError> {
    let (name, version) = path.into_inner();
    let doc = DocName::parse(&name).ok_or_else(|| page.error(no_such_document()))?;
    show(page, doc, &version, &q)
}

async fn version_pdf(
    page: Page,
    cache: web::Data<PdfCache>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, PageError> {
    let (name, version, file) = path.into_inner();
    match file.strip_suffix(".pdf").and_then(pdf_file) {
        Some((doc, lang)) if doc.slug() == name => pdf(&page, cache, doc, &version, lang).await,
        _ => Err(page.error(no_such_document())),
    }
}

async fn pds_pdf(page: Page, cache: web::Data<PdfCache>, lang: web::Path<String>) -> Result<HttpResponse, PageError> {
    let lang = Lang::parse(&lang).ok_or_else(|| page.error(no_such_document()))?;
    pdf(&page, cache, DocName::Pds, legal::current_version(DocName::Pds), lang).await
}

/// `<name>-<lang>` of a PDF's file name.
fn pdf_file(stem: &str) -> Option<(DocName, Lang)> {
    let (name, lang) = stem.rsplit_once('-')?;
    Some((DocName::parse(name)?, Lang::parse(lang)?))
}

fn show(mut page: Page, doc: DocName, version: &str, q: &LangQuery) -> Result<HttpResponse, PageError> {
    let lang = lang_of(&page, q);
    let found = legal::find(doc, version, lang)
        .ok_or_else(|| page.error(no_such_document()))?
        .map_err(|e| page.error(ApiError::internal(text!("error.http.no_such_file"), &e)))?;
    // The page's words in the document's language, so a `?lang=` link reads as one language.
    page.lang = lang;
    let current = legal::current_version(doc);
    Ok(page.render(
        "legal/document.html",
        context! {
            doc => Value::from_serialize(&found),
            name => doc.slug(),
            is_current => found.version == current,
            versions => legal::versions(doc),
        },
    ))
}

async fn pdf(
    page: &Page,
    cache: web::Data<PdfCache>,
    doc: DocName,
    version: &str,
    lang: Lang,
) -> Result<HttpResponse, PageError> {
    let version = version.to_owned();
    let rendered = tokio::task::spawn_blocking(move || cache.pdf(doc, &version, lang))
        .await
        .map_err(|e| page.error(ApiError::internal(text!("error.http.no_such_file"), &e)))?;
    let bytes = rendered
        .ok_or_else(|| page.error(no_such_document()))?
        .map_err(|e| page.error(ApiError::internal(text!("error.http.no_such_file"), &e)))?;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{}-{}.pdf\"", doc.slug(), lang.code()),
        ))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(bytes.as_ref().clone()))
}
