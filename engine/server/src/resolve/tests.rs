//! The resolver against a DNS server of our own: a few lines of UDP on 127.0.0.1 answering a
//! fixed zone, built with the DNS message codec `hickory-resolver` itself uses. The SIP
//! servers it points at are UDP sockets that answer every request with a fixed status.

use super::*;
use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::rdata::{SOA, SRV};
use hickory_resolver::proto::rr::{Name, Record};
use ivr_sip::locate::{DnsTransport, Failover, Target};
use ivr_sip::parse::{Framing, parse_message};
use ivr_sip::{Response, StatusCode};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// Every question the test DNS server received: (name, type).
type Log = Arc<Mutex<Vec<(String, RecordType)>>>;

fn lower(n: &Name) -> String {
    n.to_ascii()
        .to_ascii_lowercase()
        .trim_end_matches('.')
        .to_string()
}

/// A DNS server for `zone` on 127.0.0.1, port 0. Names it holds no record of get NXDOMAIN;
/// other types of a known name get an empty NOERROR answer; both carry the zone's SOA, as
/// RFC 2308 §3 asks, so resolvers may cache them.
async fn dns_server(zone: Vec<Record>) -> (SocketAddr, Log, JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let log: Log = Arc::default();
    let seen = log.clone();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let Ok(request) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut response = Message::response(request.metadata.id, request.metadata.op_code);
            response.metadata.recursion_desired = request.metadata.recursion_desired;
            response.metadata.recursion_available = true;
            response.metadata.authoritative = true;
            response.queries = request.queries.clone();
            response.edns = request.edns.clone();
            let mut known = false;
            for q in &request.queries {
                seen.lock().unwrap().push((lower(q.name()), q.query_type()));
                for r in &zone {
                    if lower(&r.name) == lower(q.name()) {
                        known = true;
                        if r.record_type() == q.query_type() {
                            response.answers.push(r.clone());
                        }
                    }
                }
            }
            if !known {
                response.metadata.response_code = ResponseCode::NXDomain;
            }
            if response.answers.is_empty() {
                let soa = SOA::new(
                    name("ns.test."),
                    name("admin.test."),
                    1,
                    3600,
                    600,
                    86400,
                    300,
                );
                response
                    .authorities
                    .push(Record::from_rdata(name("test."), 300, RData::SOA(soa)));
            }
            if let Ok(bytes) = response.to_vec() {
                let _ = socket.send_to(&bytes, from).await;
            }
        }
    });
    (addr, log, task)
}

fn name(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

fn srv(owner: &str, priority: u16, weight: u16, port: u16, target: &str) -> Record {
    Record::from_rdata(
        name(owner),
        300,
        RData::SRV(SRV::new(priority, weight, port, name(target))),
    )
}

fn a(owner: &str, ip: &str) -> Record {
    Record::from_rdata(name(owner), 300, RData::from(ip.parse::<IpAddr>().unwrap()))
}

/// A SIP server that answers every request with `status` and counts them.
async fn sip_server(status: StatusCode) -> (SocketAddr, Arc<Mutex<usize>>, JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let count = Arc::new(Mutex::new(0usize));
    let seen = count.clone();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                return;
            };
            if let Ok(ivr_sip::Message::Request(r)) = parse_message(&buf[..n], Framing::Datagram) {
                *seen.lock().unwrap() += 1;
                let _ = socket
                    .send_to(&Response::to_request(&r, status).to_bytes(), from)
                    .await;
            }
        }
    });
    (addr, count, task)
}

/// Send an OPTIONS to `target` from `socket` and read the status of the answer.
async fn options(socket: &UdpSocket, target: &Target, n: u32) -> StatusCode {
    let local = socket.local_addr().unwrap();
    let req = format!(
        "OPTIONS sip:desk@pbx.test SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKloc{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:ivr@127.0.0.1>;tag=t\r\nTo: <sip:desk@pbx.test>\r\n\
         Call-ID: locate-{n}\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    socket.send_to(req.as_bytes(), target.addr).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let (len, _) = tokio::time::timeout(Duration::from_secs(10), socket.recv_from(&mut buf))
        .await
        .expect("the SIP server answers")
        .unwrap();
    match parse_message(&buf[..len], Framing::Datagram).unwrap() {
        ivr_sip::Message::Response(r) => r.status,
        ivr_sip::Message::Request(_) => panic!("a request back"),
    }
}

fn limits() -> ResolveLimits {
    ResolveLimits {
        query_timeout: Duration::from_secs(2),
        attempts: 1,
        total: Duration::from_secs(10),
        ..ResolveLimits::default()
    }
}

#[tokio::test]
async fn srv_order_and_failover_to_the_second_target() {
    let (busy, busy_count, t1) = sip_server(StatusCode::SERVICE_UNAVAILABLE).await;
    let (ok, ok_count, t2) = sip_server(StatusCode::OK).await;
    // The lower priority number first (RFC 2782), whatever the order in the answer.
    let zone = vec![
        srv("_sip._udp.pbx.test.", 20, 0, ok.port(), "b.pbx.test."),
        srv("_sip._udp.pbx.test.", 10, 0, busy.port(), "a.pbx.test."),
        a("a.pbx.test.", "127.0.0.1"),
        a("b.pbx.test.", "127.0.0.1"),
    ];
    let (dns, log, t3) = dns_server(zone).await;
    let resolver = SipResolver::with_name_servers(&[dns], limits()).unwrap();

    let mut targets = resolver
        .locate(&Uri::parse("sip:desk@pbx.test").unwrap())
        .await
        .unwrap();
    assert_eq!(
        targets.as_slice(),
        [
            Target {
                addr: busy,
                transport: DnsTransport::Udp
            },
            Target {
                addr: ok,
                transport: DnsTransport::Udp
            },
        ]
    );
    let asked = log.lock().unwrap().clone();
    assert_eq!(
        asked.first(),
        Some(&("_sip._udp.pbx.test".to_string(), RecordType::SRV))
    );
    assert!(asked.contains(&("a.pbx.test".into(), RecordType::A)));
    assert!(asked.contains(&("b.pbx.test".into(), RecordType::A)));
    assert!(
        !asked.iter().any(|(n, _)| n.starts_with("_sip._tcp")),
        "UDP answered: TCP is not asked (RFC 3263 §4.1)"
    );

    // RFC 3263 §4.3: the first target answers 503, so the request goes to the second.
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let first = *targets.current().unwrap();
    let status = options(&socket, &first, 1).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let why = Failover::of_status(status).expect("503 fails over");
    let second = *targets.fail_over(why).expect("a second target");
    assert_eq!(second.addr, ok);
    assert_eq!(options(&socket, &second, 2).await, StatusCode::OK);
    assert_eq!(
        (*busy_count.lock().unwrap(), *ok_count.lock().unwrap()),
        (1, 1)
    );
    for t in [t1, t2, t3] {
        t.abort();
    }
}

#[tokio::test]
async fn answers_are_cached_within_their_ttl() {
    let zone = vec![
        srv("_sip._udp.pbx.test.", 10, 0, 5070, "a.pbx.test."),
        a("a.pbx.test.", "127.0.0.1"),
    ];
    let (dns, log, task) = dns_server(zone).await;
    let resolver = SipResolver::with_name_servers(&[dns], limits()).unwrap();
    let uri = Uri::parse("sip:desk@pbx.test").unwrap();
    let first = resolver.locate(&uri).await.unwrap();
    let asked = log.lock().unwrap().len();
    assert!(asked >= 2, "SRV and A asked: {asked}");
    let again = resolver.clone().locate(&uri).await.unwrap();
    assert_eq!(first.as_slice(), again.as_slice());
    assert_eq!(
        log.lock().unwrap().len(),
        asked,
        "the second location is served from the cache (TTL 300 s)"
    );
    task.abort();
}

#[tokio::test]
async fn explicit_port_skips_srv_and_an_ip_asks_nothing() {
    let zone = vec![
        srv("_sip._udp.pbx.test.", 10, 0, 5070, "a.pbx.test."),
        a("pbx.test.", "127.0.0.1"),
    ];
    let (dns, log, task) = dns_server(zone).await;
    let resolver = SipResolver::with_name_servers(&[dns], limits()).unwrap();
    let t = resolver
        .locate(&Uri::parse("sip:desk@pbx.test:5099;transport=tcp").unwrap())
        .await
        .unwrap();
    assert_eq!(
        t.as_slice(),
        [Target {
            addr: "127.0.0.1:5099".parse().unwrap(),
            transport: DnsTransport::Tcp
        }]
    );
    assert!(
        !log.lock()
            .unwrap()
            .iter()
            .any(|(_, ty)| *ty == RecordType::SRV),
        "an explicit port skips SRV (RFC 3263 §4.2)"
    );
    let before = log.lock().unwrap().len();
    let t = resolver
        .locate(&Uri::parse("sip:desk@127.0.0.1:5098").unwrap())
        .await
        .unwrap();
    assert_eq!(t.current().unwrap().addr, "127.0.0.1:5098".parse().unwrap());
    assert_eq!(log.lock().unwrap().len(), before, "no DNS for an IP");
    task.abort();
}

#[tokio::test]
async fn a_silent_dns_server_gives_an_error_within_the_bounds() {
    // A socket that reads and never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while silent.recv_from(&mut buf).await.is_ok() {}
    });
    let resolver = SipResolver::with_name_servers(
        &[addr],
        ResolveLimits {
            query_timeout: Duration::from_millis(100),
            attempts: 1,
            total: Duration::from_millis(400),
            ..ResolveLimits::default()
        },
    )
    .unwrap();
    let r = resolver
        .locate(&Uri::parse("sip:desk@pbx.test").unwrap())
        .await;
    assert!(
        matches!(
            r,
            Err(ResolveError::Timeout(_)) | Err(ResolveError::Locate(LocateError::NotFound))
        ),
        "{r:?}"
    );
    task.abort();
}
