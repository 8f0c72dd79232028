//! The upload of e-Factura files to the tax authority's system (ANAF SPV, the e-Factura REST API), behind settings
//! and off by default (`billing.efactura_upload`). [`Upload`] is the seam; [`AnafSpv`] the real client: it trades
//! the deployment's OAuth refresh token for an access token at ANAF's token endpoint, then posts the XML to
//! `{api}/upload?standard=UBL|CN&cif=…` and reads back the upload index (`index_incarcare`) by which the file's
//! processing is followed in SPV. Tests never call it: it talks to ANAF.

use std::future::Future;

use quick_xml::events::Event;
use quick_xml::Reader;
use secrecy::{ExposeSecret, SecretString};

use crate::config::BillingSettings;

/// Why an upload failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("cannot reach ANAF: {0}")]
    Http(#[from] reqwest::Error),
    #[error("ANAF refused the OAuth refresh token (status {0})")]
    Token(u16),
    #[error("ANAF refused the file: {0}")]
    Refused(String),
}

/// Which UBL document a file is (ANAF's `standard` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standard {
    /// An `Invoice`.
    Invoice,
    /// A `CreditNote`.
    CreditNote,
}

impl Standard {
    fn parameter(self) -> &'static str {
        match self {
            Standard::Invoice => "UBL",
            Standard::CreditNote => "CN",
        }
    }
}

/// Somewhere e-Factura files go.
pub trait Upload {
    /// Sends one file on behalf of the seller `cif` (digits, without `RO`); returns the upload index.
    fn upload(
        &self,
        xml: &str,
        standard: Standard,
        cif: &str,
    ) -> impl Future<Output = Result<String, UploadError>> + Send;
}

/// ANAF's e-Factura API, with the deployment's OAuth client.
pub struct AnafSpv {
    client: reqwest::Client,
    token_url: String,
    api_url: String,
    client_id: String,
    client_secret: SecretString,
    refresh_token: SecretString,
}

impl AnafSpv {
    /// The client the settings describe; `None` while the upload is off (the default) or not configured.
    pub fn from_settings(b: &BillingSettings) -> Option<AnafSpv> {
        if !b.efactura_upload {
            return None;
        }
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .ok()?;
        Some(AnafSpv {
            client,
            token_url: b.anaf_token_url.clone(),
            api_url: b.anaf_api_url.trim_end_matches('/').to_owned(),
            client_id: b.anaf_client_id.clone()?,
            client_secret: b.anaf_client_secret.clone()?,
            refresh_token: b.anaf_refresh_token.clone()?,
        })
    }

    async fn access_token(&self) -> Result<SecretString, UploadError> {
        #[derive(serde::Deserialize)]
        struct Token {
            access_token: String,
        }
        let response = self
            .client
            .post(&self.token_url)
            .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", self.refresh_token.expose_secret()),
            ])
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(UploadError::Token(response.status().as_u16()));
        }
        Ok(response.json::<Token>().await?.access_token.into())
    }
}

impl Upload for AnafSpv {
    async fn upload(&self, xml: &str, standard: Standard, cif: &str) -> Result<String, UploadError> {
        let token = self.access_token().await?;
        let answer = self
            .client
            .post(format!("{}/upload", self.api_url))
            .query(&[("standard", standard.parameter()), ("cif", cif)])
            .bearer_auth(token.expose_secret())
            .header("Content-Type", "text/plain")
            .body(xml.to_owned())
            .send()
            .await?
            .text()
            .await?;
        upload_index(&answer)
    }
}

/// The upload index of ANAF's answer (`<header ExecutionStatus="0" index_incarcare="…"/>`), or its errors.
pub fn upload_index(answer: &str) -> Result<String, UploadError> {
    let mut reader = Reader::from_str(answer);
    let mut errors = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) => {
                for a in e.attributes().flatten() {
                    let value = a.unescape_value().map(|v| v.into_owned()).unwrap_or_default();
                    match a.key.local_name().as_ref() {
                        b"index_incarcare" => return Ok(value),
                        b"errorMessage" => errors.push(value),
                        _ => {}
                    }
                }
            }
            Ok(Event::Eof) => break,
            Err(e) => return Err(UploadError::Refused(e.to_string())),
            _ => {}
        }
    }
    Err(UploadError::Refused(if errors.is_empty() {
        "no upload index in the answer".into()
    } else {
        errors.join("; ")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upload_is_off_by_default_and_the_answer_gives_the_index_or_the_errors() {
        assert!(AnafSpv::from_settings(&BillingSettings::default()).is_none());
        let ok = r#"<header xmlns="mfp:anaf:dgti:spv:respUploadFisier:v1" dateResponse="202108051140" ExecutionStatus="0" index_incarcare="3828"/>"#;
        assert_eq!(upload_index(ok).unwrap(), "3828");
        let refused = r#"<header xmlns="mfp:anaf:dgti:spv:respUploadFisier:v1" ExecutionStatus="1"><Errors errorMessage="Fisierul transmis nu este valid."/></header>"#;
        assert!(matches!(upload_index(refused), Err(UploadError::Refused(m)) if m.contains("nu este valid")));
    }
}
