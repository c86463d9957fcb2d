//! A DNS server of the tests' own on 127.0.0.1: a thread answering a fixed zone over UDP,
//! with the DNS message codec `hickory-resolver` uses, so that the engine's RFC 3263
//! location (`--dns-server`) can be tested without touching the machine's resolver.

use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::rdata::{SOA, SRV};
use hickory_resolver::proto::rr::{Name, RData, Record};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running DNS server; it stops when dropped.
pub struct DnsServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Every question asked, as "name TYPE".
    pub asked: Arc<Mutex<Vec<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn lower(n: &Name) -> String {
    n.to_ascii()
        .to_ascii_lowercase()
        .trim_end_matches('.')
        .to_string()
}

fn name(s: &str) -> Name {
    Name::from_str(s).expect("a DNS name")
}

/// An SRV record (RFC 2782).
pub fn srv(owner: &str, priority: u16, weight: u16, port: u16, target: &str) -> Record {
    Record::from_rdata(
        name(owner),
        60,
        RData::SRV(SRV::new(priority, weight, port, name(target))),
    )
}

/// An A or AAAA record.
pub fn a(owner: &str, ip: &str) -> Record {
    let ip: IpAddr = ip.parse().expect("an IP address");
    Record::from_rdata(name(owner), 60, RData::from(ip))
}

impl DnsServer {
    /// Serve `zone`: names it has no record of get NXDOMAIN, other types of a known name an
    /// empty answer, both with an SOA (RFC 2308 §3).
    pub fn start(zone: Vec<Record>) -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("a UDP port");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("a read timeout");
        let addr = socket.local_addr().expect("its address");
        let asked: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (log, stopped) = (asked.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
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
                    log.lock().expect("log").push(format!(
                        "{} {}",
                        lower(q.name()),
                        q.query_type()
                    ));
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
                        60,
                    );
                    response.authorities.push(Record::from_rdata(
                        name("test."),
                        60,
                        RData::SOA(soa),
                    ));
                }
                if let Ok(bytes) = response.to_vec() {
                    let _ = socket.send_to(&bytes, from);
                }
            }
        });
        DnsServer { addr, asked, stop }
    }
}
