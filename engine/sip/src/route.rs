//! Route sets (RFC 3261 §12.1.1, §12.1.2) and where an in-dialog request goes (§12.2.1.1).
//!
//! A proxy that wants to stay on the path of a dialog puts a `Record-Route` value in the
//! dialog-creating request. Both ends keep the list as the dialog's *route set*: the UAS in
//! the order of the request, the UAC reversed (it reads the values off the response, which
//! lists the proxies from its far end). Every later request of the dialog carries the route
//! set in `Route` headers and goes to the first route's address.
//!
//! Loose routers (`;lr`, RFC 3261) are the common case: the Request-URI stays the remote
//! target. A strict router (RFC 2543, no `;lr`) expects the Request-URI to name itself: the
//! first route moves into the Request-URI and the remote target becomes the last `Route`.

use crate::header::{HeaderName, NameAddr};
use crate::message::{HeaderError, Headers};
use crate::uri::Uri;
use std::net::{IpAddr, SocketAddr};

/// A dialog's route set: the URIs of the proxies that record-routed, in the order requests
/// traverse them (first = next hop).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteSet(Vec<NameAddr>);

/// What a request built from a route set carries, and where it goes first
/// (RFC 3261 §12.2.1.1 and §8.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The Request-URI.
    pub request_uri: Uri,
    /// The `Route` header values, in order.
    pub routes: Vec<String>,
    /// The URI whose address the request is sent to (§8.1.2): the first route, or the
    /// remote target when the route set is empty.
    pub next_hop: Uri,
    /// Whether the first route is a strict router (no `lr`) and the §12.2.1.1 rewrite applied.
    pub strict: bool,
}

/// A pre-loaded route set (RFC 3261 §8.1.2): an outbound proxy, or a trunk's proxies, first
/// hop first.
impl From<Vec<NameAddr>> for RouteSet {
    fn from(routes: Vec<NameAddr>) -> RouteSet {
        RouteSet(routes)
    }
}

impl RouteSet {
    /// The UAS route set: the request's Record-Route values in order, one header line or
    /// several, keeping every URI parameter (RFC 3261 §12.1.1).
    pub fn uas(request: &Headers) -> Result<RouteSet, HeaderError> {
        Self::read(request).map(RouteSet)
    }

    /// The UAC route set: the response's Record-Route values in reverse order (RFC 3261
    /// §12.1.2).
    pub fn uac(response: &Headers) -> Result<RouteSet, HeaderError> {
        let mut v = Self::read(response)?;
        v.reverse();
        Ok(RouteSet(v))
    }

    fn read(headers: &Headers) -> Result<Vec<NameAddr>, HeaderError> {
        headers
            .values(&HeaderName::RecordRoute)
            .map(|v| {
                let n = NameAddr::parse(v, HeaderName::RecordRoute)?;
                if n.uri.as_sip().is_none() {
                    return Err(HeaderError::Malformed {
                        name: HeaderName::RecordRoute,
                        reason: "not a sip: or sips: URI",
                    });
                }
                Ok(n)
            })
            .collect()
    }

    /// Whether no proxy record-routed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The routes, first hop first.
    pub fn iter(&self) -> impl Iterator<Item = &NameAddr> {
        self.0.iter()
    }

    /// Where a request to `remote_target` goes and what it carries (RFC 3261 §12.2.1.1).
    pub fn target(&self, remote_target: &Uri) -> Target {
        let Some(first) = self.0.first() else {
            return Target {
                request_uri: remote_target.clone(),
                routes: Vec::new(),
                next_hop: remote_target.clone(),
                strict: false,
            };
        };
        if is_loose(&first.uri) {
            return Target {
                request_uri: remote_target.clone(),
                routes: self.0.iter().map(route_value).collect(),
                next_hop: first.uri.clone(),
                strict: false,
            };
        }
        // Strict router: its URI becomes the Request-URI, stripped of what a Request-URI may
        // not carry (§19.1.1: the `method` parameter and headers); the rest of the route set
        // follows in Route, and the remote target last.
        let mut request_uri = first.uri.clone();
        if let Uri::Sip(s) = &mut request_uri {
            s.headers = None;
            s.params
                .0
                .retain(|(n, _)| !n.eq_ignore_ascii_case("method"));
        }
        let mut routes: Vec<String> = self.0[1..].iter().map(route_value).collect();
        routes.push(format!("<{remote_target}>"));
        Target {
            next_hop: request_uri.clone(),
            request_uri,
            routes,
            strict: true,
        }
    }
}

/// Whether a route URI names a loose router (`lr` parameter present, with or without a value).
pub fn is_loose(uri: &Uri) -> bool {
    uri.as_sip().is_some_and(|s| s.params.get("lr").is_some())
}

/// A Route value for a recorded route: the name-addr as received, header parameters included.
fn route_value(n: &NameAddr) -> String {
    n.to_string()
}

/// Where a URI points when its host is an IP literal: the socket address (default port 5060,
/// or 5061 for `sips:`, RFC 3263 §4.2) and the `transport` parameter, lower-cased, if any.
/// Host names give `None`: resolving them is I/O, left to the owner.
pub fn socket_of(uri: &Uri) -> Option<(SocketAddr, Option<String>)> {
    let s = uri.as_sip()?;
    let ip: IpAddr = s
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    let default = if s.secure { 5061 } else { 5060 };
    let transport = s
        .params
        .get("transport")
        .flatten()
        .map(str::to_ascii_lowercase);
    Some((SocketAddr::new(ip, s.port.unwrap_or(default)), transport))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[&str]) -> Headers {
        let mut h = Headers::new();
        for l in lines {
            h.push(HeaderName::RecordRoute, *l);
        }
        h
    }

    fn uri(s: &str) -> Uri {
        Uri::parse(s).unwrap()
    }

    #[test]
    fn uas_keeps_request_order_across_lines_and_commas() {
        let h = headers(&[
            "<sip:p1.example.com;lr>, <sip:p2.example.com;lr;ftag=x>",
            "<sip:10.0.0.3:5070;transport=tcp;lr>;hparam=1",
        ]);
        let rs = RouteSet::uas(&h).unwrap();
        let got: Vec<String> = rs.iter().map(|n| n.uri.to_string()).collect();
        assert_eq!(
            got,
            [
                "sip:p1.example.com;lr",
                "sip:p2.example.com;lr;ftag=x",
                "sip:10.0.0.3:5070;transport=tcp;lr"
            ]
        );
        // The header parameter stays with its value.
        assert_eq!(
            rs.iter().nth(2).unwrap().params.get("hparam"),
            Some(Some("1"))
        );
    }

    #[test]
    fn uac_reverses() {
        let h = headers(&["<sip:p1;lr>", "<sip:p2;lr>, <sip:p3;lr>"]);
        let rs = RouteSet::uac(&h).unwrap();
        let got: Vec<String> = rs.iter().map(|n| n.uri.to_string()).collect();
        assert_eq!(got, ["sip:p3;lr", "sip:p2;lr", "sip:p1;lr"]);
    }

    #[test]
    fn empty_route_set_goes_to_the_remote_target() {
        let t = RouteSet::default().target(&uri("sip:alice@192.0.2.4:5070"));
        assert_eq!(t.request_uri.to_string(), "sip:alice@192.0.2.4:5070");
        assert!(t.routes.is_empty() && !t.strict);
        assert_eq!(t.next_hop, t.request_uri);
    }

    #[test]
    fn loose_next_hop_is_the_first_route() {
        let rs = RouteSet::uas(&headers(&["<sip:127.0.0.1:5090;lr=on>, <sip:proxy2;lr>"])).unwrap();
        let t = rs.target(&uri("sip:alice@192.0.2.4:5070"));
        assert_eq!(t.request_uri.to_string(), "sip:alice@192.0.2.4:5070");
        assert_eq!(t.routes, ["<sip:127.0.0.1:5090;lr=on>", "<sip:proxy2;lr>"]);
        assert_eq!(t.next_hop.to_string(), "sip:127.0.0.1:5090;lr=on");
        assert!(!t.strict);
        assert_eq!(
            socket_of(&t.next_hop),
            Some(("127.0.0.1:5090".parse().unwrap(), None))
        );
    }

    #[test]
    fn strict_router_gets_the_request_uri_and_the_target_goes_last() {
        // RFC 3261 §12.2.1.1's example: route set <sip:proxy1>, <sip:proxy2>, <sip:proxy3;lr>,
        // <sip:proxy4>, remote target sip:user@remoteua.
        let rs = RouteSet::uas(&headers(&[
            "<sip:proxy1;method=INVITE?x=y>",
            "<sip:proxy2>",
            "<sip:proxy3;lr>",
            "<sip:proxy4>",
        ]))
        .unwrap();
        let t = rs.target(&uri("sip:user@remoteua"));
        assert!(t.strict);
        assert_eq!(t.request_uri.to_string(), "sip:proxy1");
        assert_eq!(
            t.routes,
            [
                "<sip:proxy2>",
                "<sip:proxy3;lr>",
                "<sip:proxy4>",
                "<sip:user@remoteua>"
            ]
        );
        assert_eq!(t.next_hop.to_string(), "sip:proxy1");
        assert_eq!(socket_of(&t.next_hop), None, "a host name needs resolving");
    }

    #[test]
    fn bad_record_route_is_an_error() {
        assert!(RouteSet::uas(&headers(&["<sip:p1;lr"])).is_err());
        assert!(RouteSet::uas(&headers(&["<tel:+1234>"])).is_err());
    }

    #[test]
    fn socket_defaults_and_transport() {
        assert_eq!(
            socket_of(&uri("sip:[::1];transport=TCP")),
            Some(("[::1]:5060".parse().unwrap(), Some("tcp".into())))
        );
        assert_eq!(
            socket_of(&uri("sips:192.0.2.1")).map(|(a, _)| a.port()),
            Some(5061)
        );
    }
}
