//! The application context: what every request handler receives (`AppState`, built once at start by
//! `startup::provision`) and what it knows of the caller (its address, behind trusted proxies).
//!
//! On the interface floor (docs/ARCHITECTURE.md): handlers take `AppState`; domain functions take their area's
//! part of it (`state.accounts()`, `state.billing()`, `state.documents()`, or the lifecycle's `Services` it derefs
//! to) or only what they use (`&Db`, `&Hsm`, `&dyn Clock`).

use actix_web::web;

use crate::lifecycle;

/// Everything a request handler may need; cheap to clone. The services are the lifecycle's (the widest domain
/// context, which hands each area its part: `state.accounts()`, `state.billing()`, `state.documents()`), read
/// through `Deref` as `state.db`, `state.settings`…
#[derive(Clone)]
pub struct AppState {
    pub services: lifecycle::Services,
}

impl AppState {
    /// The OAuth 2.0 authorization server's part: the database, the token, the settings, the clock.
    pub fn oauth(&self) -> crate::oauth::Services<'_> {
        crate::oauth::Services {
            db: &self.db,
            hsm: &self.hsm,
            settings: &self.settings,
            clock: self.clock.as_ref(),
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = lifecycle::Services;

    fn deref(&self) -> &lifecycle::Services {
        &self.services
    }
}

/// The client's address for throttling and the audit trail: the peer's IP, or, when the peer is one of the
/// `trusted_proxies`, the address that proxy (and the trusted proxies before it) forwarded in the configured
/// header. A client that is not a trusted proxy cannot choose its address by writing the header itself.
pub fn client_address(req: &actix_web::HttpRequest) -> String {
    let Some(peer) = req.peer_addr().map(|a| a.ip()) else {
        return "unknown".into();
    };
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return peer.to_string();
    };
    let limits = &state.settings.limits;
    forwarded_client(
        peer,
        req.headers(),
        &limits.trusted_proxies,
        limits.client_address_header,
    )
    .to_string()
}

/// The client behind a chain of trusted proxies: the forwarded hops are read right to left (each proxy appends
/// the address it received from), trusted proxies are skipped, and the first hop that is not trusted is the
/// client. Nothing is read when `peer` itself is not trusted; a hop that is not an address ("unknown", an
/// obfuscated name) stops the walk at the last trusted proxy, as what lies beyond it cannot be believed.
pub fn forwarded_client(
    peer: std::net::IpAddr,
    headers: &actix_web::http::header::HeaderMap,
    trusted: &[ipnet::IpNet],
    header: crate::config::ForwardedHeader,
) -> std::net::IpAddr {
    use crate::config::ForwardedHeader;
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let name = match header {
        ForwardedHeader::XForwardedFor => "x-forwarded-for",
        ForwardedHeader::Forwarded => "forwarded",
    };
    // Every line of the header, in order, is one list (RFC 9110 §5.3).
    let elements: Vec<&str> = headers
        .get_all(name)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for element in elements.iter().rev() {
        let hop = match header {
            ForwardedHeader::XForwardedFor => parse_hop(element),
            ForwardedHeader::Forwarded => element
                .split(';')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                .and_then(|(_, v)| parse_hop(v.trim().trim_matches('"'))),
        };
        match hop {
            Some(ip) if is_trusted(&ip) => client = ip,
            Some(ip) => return ip,
            None => return client,
        }
    }
    client
}

/// One forwarded hop: an IP address, possibly with a port (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn parse_hop(text: &str) -> Option<std::net::IpAddr> {
    text.parse::<std::net::IpAddr>()
        .ok()
        .or_else(|| text.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            text.strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse().ok())
        })
}

#[cfg(test)]
mod tests {
    use super::forwarded_client;
    use crate::config::ForwardedHeader::{Forwarded, XForwardedFor};
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
    use std::net::IpAddr;

    fn headers(name: &'static str, lines: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(HeaderName::from_static(name), HeaderValue::from_static(l));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let h = headers("x-forwarded-for", &["198.51.100.7"]);
        // A client that writes the header itself is still its peer address.
        assert_eq!(
            forwarded_client(ip("203.0.113.9"), &h, &trusted, XForwardedFor),
            ip("203.0.113.9")
        );
        assert_eq!(forwarded_client(ip("10.0.0.2"), &h, &[], XForwardedFor), ip("10.0.0.2"));
        assert_eq!(
            forwarded_client(ip("10.0.0.2"), &h, &trusted, XForwardedFor),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn the_client_is_the_rightmost_hop_that_is_not_a_trusted_proxy() {
        let trusted = ["10.0.0.0/8".parse().unwrap(), "2001:db8::/32".parse().unwrap()];
        // The client forged the first entry; the trusted proxies appended the rest.
        let h = headers("x-forwarded-for", &["1.1.1.1, 198.51.100.7", "10.1.1.1"]);
        assert_eq!(
            forwarded_client(ip("10.0.0.2"), &h, &trusted, XForwardedFor),
            ip("198.51.100.7")
        );
        let h = headers("x-forwarded-for", &["garbage, 10.1.1.1"]);
        assert_eq!(
            forwarded_client(ip("10.0.0.2"), &h, &trusted, XForwardedFor),
            ip("10.1.1.1")
        );
        let h = headers(
            "forwarded",
            &["for=1.1.1.1, for=\"[2001:db8:cafe::17]:4711\";proto=https, For=198.51.100.7:8080;by=10.0.0.2"],
        );
        assert_eq!(
            forwarded_client(ip("10.0.0.2"), &h, &trusted, Forwarded),
            ip("198.51.100.7")
        );
        // The header that is not configured is ignored.
        assert_eq!(
            forwarded_client(ip("10.0.0.2"), &h, &trusted, XForwardedFor),
            ip("10.0.0.2")
        );
        let h = headers("forwarded", &["for=unknown"]);
        assert_eq!(
            forwarded_client(ip("10.0.0.2"), &h, &trusted, Forwarded),
            ip("10.0.0.2")
        );
    }
}
