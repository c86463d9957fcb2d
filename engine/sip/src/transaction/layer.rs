//! The transaction layer: matches messages to transactions (RFC 3261 §17.1.3, §17.2.3),
//! creates server transactions for new requests, and indexes every deadline so the owner
//! sleeps on one timer.

use super::client_non_invite::ClientEvent;
use super::server_invite::ServerInviteEvent;
use super::{ClientInvite, ClientNonInvite, ServerInvite, ServerNonInvite, TimerConfig};
use crate::Transport;
use crate::header::{HeaderName, Via};
use crate::message::{CoreHeaders, Message, Method, Request, Response};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

/// The RFC 3261 branch prefix ("magic cookie", §8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Where a message came from or goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// UDP or TCP.
    pub transport: Transport,
    /// The remote address (for TCP, it names the connection).
    pub addr: SocketAddr,
}

/// Identifies a server transaction (RFC 3261 §17.2.3): branch, sent-by and method, with ACK
/// folded into INVITE.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerKey {
    branch: String,
    sent_by: String,
    method: Method,
}

impl ServerKey {
    /// The key of a request, or `None` if it has no usable Via.
    pub fn of(request: &Request) -> Option<ServerKey> {
        let via = request.top_via().ok()?;
        let method = match request.method {
            Method::Ack => Method::Invite,
            ref m => m.clone(),
        };
        let sent_by = format!(
            "{}:{}",
            via.host.to_ascii_lowercase(),
            via.port.unwrap_or(0)
        );
        let branch = match via.branch() {
            Some(b) if b.starts_with(MAGIC_COOKIE) && b.len() > MAGIC_COOKIE.len() => b.to_string(),
            // RFC 2543 peers: fall back to the dialog-ish identifiers (§17.2.3, simplified).
            _ => format!(
                "2543|{}|{}|{}",
                request.call_id().unwrap_or_default(),
                request
                    .party_from()
                    .ok()
                    .and_then(|f| f.tag().map(str::to_string))
                    .unwrap_or_default(),
                request.cseq().map(|c| c.seq).unwrap_or_default()
            ),
        };
        Some(ServerKey {
            branch,
            sent_by,
            method,
        })
    }

    /// The key of the INVITE transaction a CANCEL with this key targets (RFC 3261 §9.2).
    pub fn invite_for_cancel(&self) -> ServerKey {
        ServerKey {
            method: Method::Invite,
            ..self.clone()
        }
    }

    /// The branch.
    pub fn branch(&self) -> &str {
        &self.branch
    }
}

/// Identifies a client transaction (RFC 3261 §17.1.3): branch and CSeq method.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey {
    branch: String,
    method: Method,
}

impl ClientKey {
    fn of(msg: &impl CoreHeaders) -> Option<ClientKey> {
        let via = msg.top_via().ok()?;
        let cseq = msg.cseq().ok()?;
        let method = match cseq.method {
            Method::Ack => Method::Invite,
            m => m,
        };
        Some(ClientKey {
            branch: via.branch()?.to_string(),
            method,
        })
    }
}

/// What the transaction layer tells its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxEvent {
    /// A new request; a server transaction was created for it (except for ACK, which has
    /// none when it acknowledges a 2xx). Answer it with [`TransactionLayer::respond`].
    Request {
        /// The transaction.
        key: ServerKey,
        /// The request, with `received`/`rport` added to its top Via (RFC 3581).
        request: Request,
        /// Where it came from.
        peer: Peer,
    },
    /// A response for one of our client transactions.
    Response {
        /// The transaction.
        key: ClientKey,
        /// The response.
        response: Response,
    },
    /// A client transaction got no final response in time (treat as 408).
    ClientTimeout(ClientKey),
    /// A 2xx to an INVITE was never acknowledged: end the call with BYE.
    AckTimeout(ServerKey),
    /// A response that matched no transaction, dropped (RFC 3261 §17.1.3); reported for logs.
    StrayResponse(Response),
}

#[derive(Debug)]
enum ServerTx {
    Invite(ServerInvite),
    NonInvite(ServerNonInvite),
}

#[derive(Debug)]
enum ClientTx {
    Invite(ClientInvite),
    NonInvite(ClientNonInvite),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum TxRef {
    Server(ServerKey),
    Client(ClientKey),
}

struct Entry<T> {
    tx: T,
    peer: Peer,
    deadline: Option<Instant>,
}

/// All transactions of one endpoint.
pub struct TransactionLayer {
    config: TimerConfig,
    servers: HashMap<ServerKey, Entry<ServerTx>>,
    clients: HashMap<ClientKey, Entry<ClientTx>>,
    deadlines: BTreeSet<(Instant, TxRef)>,
    transmits: VecDeque<(Peer, Message)>,
    events: VecDeque<TxEvent>,
}

impl TransactionLayer {
    /// An empty layer with the given timer values.
    pub fn new(config: TimerConfig) -> Self {
        TransactionLayer {
            config,
            servers: HashMap::new(),
            clients: HashMap::new(),
            deadlines: BTreeSet::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Number of live transactions (server, client).
    pub fn len(&self) -> (usize, usize) {
        (self.servers.len(), self.clients.len())
    }

    /// A parsed message arrived from `peer`.
    pub fn handle_message(&mut self, now: Instant, msg: Message, peer: Peer) {
        match msg {
            Message::Request(r) => self.handle_request(now, r, peer),
            Message::Response(r) => self.handle_response(now, r),
        }
    }

    fn handle_request(&mut self, now: Instant, mut request: Request, peer: Peer) {
        stamp_received(&mut request, peer.addr);
        let Some(key) = ServerKey::of(&request) else {
            return;
        };
        if let Some(entry) = self.servers.get_mut(&key) {
            match (&mut entry.tx, &request.method) {
                (ServerTx::Invite(tx), Method::Ack) => tx.handle_ack(now),
                (ServerTx::Invite(tx), _) => tx.handle_retransmission(now),
                (ServerTx::NonInvite(tx), _) => tx.handle_retransmission(now),
            }
            self.after_server(&key);
            return;
        }
        let reliable = peer.transport.is_reliable();
        match request.method {
            Method::Ack => {}
            Method::Invite => {
                let tx = ServerInvite::new(now, request.clone(), reliable, self.config);
                self.servers.insert(
                    key.clone(),
                    Entry {
                        tx: ServerTx::Invite(tx),
                        peer,
                        deadline: None,
                    },
                );
                self.after_server(&key);
            }
            _ => {
                let tx = ServerNonInvite::new(request.clone(), reliable, self.config);
                self.servers.insert(
                    key.clone(),
                    Entry {
                        tx: ServerTx::NonInvite(tx),
                        peer,
                        deadline: None,
                    },
                );
            }
        }
        self.events
            .push_back(TxEvent::Request { key, request, peer });
    }

    fn handle_response(&mut self, now: Instant, response: Response) {
        let Some(key) = ClientKey::of(&response) else {
            return;
        };
        let Some(entry) = self.clients.get_mut(&key) else {
            self.events.push_back(TxEvent::StrayResponse(response));
            return;
        };
        match &mut entry.tx {
            ClientTx::Invite(tx) => tx.handle_response(now, response),
            ClientTx::NonInvite(tx) => tx.handle_response(now, response),
        }
        self.after_client(&key);
    }

    /// Send a response on a server transaction. Returns false if it no longer exists.
    pub fn respond(&mut self, now: Instant, key: &ServerKey, response: Response) -> bool {
        let Some(entry) = self.servers.get_mut(key) else {
            return false;
        };
        match &mut entry.tx {
            ServerTx::Invite(tx) => tx.send_response(now, response),
            ServerTx::NonInvite(tx) => tx.send_response(now, response),
        }
        self.after_server(key);
        true
    }

    /// Answer a request and forget its server transaction at once: the response is sent
    /// once and never retransmitted, and a retransmitted request is a new request (RFC 3261
    /// §8.2.7, a stateless UAS; §17.2). For refusals that must cost nothing to ask for, such
    /// as a 503 at capacity. Returns false if the transaction no longer exists.
    pub fn respond_stateless(&mut self, key: &ServerKey, response: Response) -> bool {
        let Some(e) = self.servers.remove(key) else {
            return false;
        };
        if let Some(d) = e.deadline {
            self.deadlines.remove(&(d, TxRef::Server(key.clone())));
        }
        let msg = Message::Response(response);
        self.transmits.push_back((response_peer(e.peer, &msg), msg));
        true
    }

    /// The dialog received the ACK for the 2xx sent on this INVITE transaction: stop retransmitting.
    pub fn ack_received(&mut self, now: Instant, key: &ServerKey) {
        if let Some(Entry {
            tx: ServerTx::Invite(tx),
            ..
        }) = self.servers.get_mut(key)
        {
            tx.handle_ack(now);
        }
        self.after_server(key);
    }

    /// Whether the INVITE transaction `key` exists and has not sent a final response.
    pub fn is_pending_invite(&self, key: &ServerKey) -> bool {
        matches!(self.servers.get(key), Some(Entry { tx: ServerTx::Invite(tx), .. }) if !tx.is_final())
    }

    /// Start a client transaction for `request` (its top Via must carry a fresh branch).
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Request,
        peer: Peer,
    ) -> Option<ClientKey> {
        let key = ClientKey::of(&request)?;
        let reliable = peer.transport.is_reliable();
        let tx = if request.method == Method::Invite {
            ClientTx::Invite(ClientInvite::new(now, request, reliable, self.config))
        } else {
            ClientTx::NonInvite(ClientNonInvite::new(now, request, reliable, self.config))
        };
        self.clients.insert(
            key.clone(),
            Entry {
                tx,
                peer,
                deadline: None,
            },
        );
        self.after_client(&key);
        Some(key)
    }

    /// Send a message outside any transaction (the ACK for a 2xx, a stateless 400).
    pub fn send_stateless(&mut self, peer: Peer, msg: Message) {
        self.transmits.push_back((peer, msg));
    }

    /// Fire every deadline due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Peek by reference: cloning the key (three strings) on every wake-up would allocate
        // on the RTP pacing path, which wakes this layer 50 times a second.
        while self.deadlines.first().is_some_and(|(at, _)| *at <= now) {
            let Some((_, r)) = self.deadlines.pop_first() else {
                break;
            };
            match r {
                TxRef::Server(key) => {
                    if let Some(e) = self.servers.get_mut(&key) {
                        e.deadline = None;
                        match &mut e.tx {
                            ServerTx::Invite(tx) => tx.handle_timeout(now),
                            ServerTx::NonInvite(tx) => tx.handle_timeout(now),
                        }
                    }
                    self.after_server(&key);
                }
                TxRef::Client(key) => {
                    if let Some(e) = self.clients.get_mut(&key) {
                        e.deadline = None;
                        match &mut e.tx {
                            ClientTx::Invite(tx) => tx.handle_timeout(now),
                            ClientTx::NonInvite(tx) => tx.handle_timeout(now),
                        }
                    }
                    self.after_client(&key);
                }
            }
        }
    }

    /// Collect a server transaction's output, re-index its deadline, drop it when terminated.
    fn after_server(&mut self, key: &ServerKey) {
        let Some(e) = self.servers.get_mut(key) else {
            return;
        };
        let (done, next) = match &mut e.tx {
            ServerTx::Invite(tx) => {
                while let Some(m) = tx.poll_transmit() {
                    self.transmits.push_back((response_peer(e.peer, &m), m));
                }
                while let Some(ev) = tx.poll_event() {
                    if ev == ServerInviteEvent::AckTimeout {
                        self.events.push_back(TxEvent::AckTimeout(key.clone()));
                    }
                }
                (tx.is_terminated(), tx.poll_timeout())
            }
            ServerTx::NonInvite(tx) => {
                while let Some(m) = tx.poll_transmit() {
                    self.transmits.push_back((response_peer(e.peer, &m), m));
                }
                (tx.is_terminated(), tx.poll_timeout())
            }
        };
        let r = TxRef::Server(key.clone());
        reindex(&mut self.deadlines, &mut e.deadline, next, r);
        if done
            && let Some(e) = self.servers.remove(key)
            && let Some(d) = e.deadline
        {
            self.deadlines.remove(&(d, TxRef::Server(key.clone())));
        }
    }

    fn after_client(&mut self, key: &ClientKey) {
        let Some(e) = self.clients.get_mut(key) else {
            return;
        };
        let mut events = Vec::new();
        let (done, next) = match &mut e.tx {
            ClientTx::Invite(tx) => {
                while let Some(m) = tx.poll_transmit() {
                    self.transmits.push_back((e.peer, m));
                }
                events.extend(std::iter::from_fn(|| tx.poll_event()));
                (tx.is_terminated(), tx.poll_timeout())
            }
            ClientTx::NonInvite(tx) => {
                while let Some(m) = tx.poll_transmit() {
                    self.transmits.push_back((e.peer, m));
                }
                events.extend(std::iter::from_fn(|| tx.poll_event()));
                (tx.is_terminated(), tx.poll_timeout())
            }
        };
        for ev in events {
            self.events.push_back(match ev {
                ClientEvent::Response(response) => TxEvent::Response {
                    key: key.clone(),
                    response,
                },
                ClientEvent::Timeout => TxEvent::ClientTimeout(key.clone()),
            });
        }
        reindex(
            &mut self.deadlines,
            &mut e.deadline,
            next,
            TxRef::Client(key.clone()),
        );
        if done
            && let Some(e) = self.clients.remove(key)
            && let Some(d) = e.deadline
        {
            self.deadlines.remove(&(d, TxRef::Client(key.clone())));
        }
    }

    /// The next message to send and where.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<(Peer, Message)> {
        self.transmits.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    /// The earliest deadline of any transaction.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }
}

fn reindex(
    set: &mut BTreeSet<(Instant, TxRef)>,
    slot: &mut Option<Instant>,
    next: Option<Instant>,
    r: TxRef,
) {
    if *slot == next {
        return;
    }
    if let Some(old) = slot.take() {
        set.remove(&(old, r.clone()));
    }
    if let Some(at) = next {
        set.insert((at, r));
        *slot = Some(at);
    }
}

/// RFC 3581 §4 and RFC 3261 §18.2.1: note where a request really came from in its top Via.
fn stamp_received(request: &mut Request, source: SocketAddr) {
    let Some(first) = request.headers.get(&HeaderName::Via).map(str::to_string) else {
        return;
    };
    let mut values: Vec<String> = crate::header::split_commas(&first)
        .map(str::to_string)
        .collect();
    let Some(Ok(mut via)) = values.first().map(|v| Via::parse(v)) else {
        return;
    };
    let ip = source.ip().to_string();
    let host = via.host.trim_start_matches('[').trim_end_matches(']');
    if host != ip {
        via.params.set("received", Some(ip));
    }
    if via.params.get("rport").is_some() {
        via.params.set("rport", Some(source.port().to_string()));
        if via.params.get("received").is_none() {
            via.params.set("received", Some(source.ip().to_string()));
        }
    }
    values[0] = via.to_string();
    let joined = values.join(", ");
    // Replace only the first Via line, keeping the others where they are.
    let mut replaced = false;
    let mut headers = crate::message::Headers::new();
    for h in request.headers.iter() {
        if h.name == HeaderName::Via && !replaced {
            headers.push(HeaderName::Via, joined.clone());
            replaced = true;
        } else {
            headers.push(h.name.clone(), h.value.clone());
        }
    }
    request.headers = headers;
}

/// Where a response goes (RFC 3261 §18.2.2, RFC 3581 §4): over TCP, back on the connection;
/// over UDP, to the `received` address and the `rport` port, or the Via port (5060 by default).
fn response_peer(request_peer: Peer, msg: &Message) -> Peer {
    if request_peer.transport.is_reliable() {
        return request_peer;
    }
    let Message::Response(r) = msg else {
        return request_peer;
    };
    let Ok(via) = r.top_via() else {
        return request_peer;
    };
    let port = match via.params.get("rport") {
        Some(Some(p)) => p.parse().unwrap_or(request_peer.addr.port()),
        _ => via.port.unwrap_or(5060),
    };
    Peer {
        addr: SocketAddr::new(request_peer.addr.ip(), port),
        ..request_peer
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::StatusCode;
    use crate::parse::{Framing, parse_message};
    use std::time::Duration;

    pub(crate) fn request(method: &str) -> Request {
        let s = format!(
            "{method} sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-{method};rport\r\n\
             From: <sip:caller@127.0.0.1>;tag=abc\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: call-1\r\n\
             CSeq: 1 {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        match parse_message(s.as_bytes(), Framing::Datagram).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    pub(crate) fn invite() -> Request {
        request("INVITE")
    }

    fn peer() -> Peer {
        Peer {
            transport: Transport::Udp,
            addr: "127.0.0.1:5070".parse().unwrap(),
        }
    }

    #[test]
    fn retransmitted_request_is_absorbed_and_answered_again() {
        let t0 = crate::test_epoch();
        let mut l = TransactionLayer::new(TimerConfig::default());
        l.handle_message(t0, Message::Request(invite()), peer());
        let key = match l.poll_event() {
            Some(TxEvent::Request { key, request, .. }) => {
                let via = request.top_via().unwrap();
                assert_eq!(via.params.get("rport"), Some(Some("5070")));
                key
            }
            other => panic!("{other:?}"),
        };
        assert!(
            matches!(l.poll_transmit(), Some((_, Message::Response(r))) if r.status == StatusCode::TRYING)
        );
        l.handle_message(t0, Message::Request(invite()), peer());
        assert_eq!(l.poll_event(), None, "retransmission is not a new request");
        assert!(l.poll_transmit().is_some(), "100 Trying again");
        assert!(l.respond(t0, &key, Response::to_request(&invite(), StatusCode::OK)));
        let (to, _) = l.poll_transmit().unwrap();
        assert_eq!(to.addr, peer().addr);
        assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_millis(500)));
        l.ack_received(t0, &key);
        assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        l.handle_timeout(t0 + Duration::from_secs(32));
        assert_eq!(l.len(), (0, 0));
    }

    #[test]
    fn cancel_finds_its_invite() {
        let t0 = crate::test_epoch();
        let mut l = TransactionLayer::new(TimerConfig::default());
        l.handle_message(t0, Message::Request(invite()), peer());
        let mut cancel = request("CANCEL");
        cancel.headers.set(
            HeaderName::Via,
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-INVITE;rport",
        );
        l.handle_message(t0, Message::Request(cancel), peer());
        let _ = l.poll_event();
        let Some(TxEvent::Request { key, .. }) = l.poll_event() else {
            panic!()
        };
        assert!(l.is_pending_invite(&key.invite_for_cancel()));
    }

    #[test]
    fn client_bye_gets_its_response_and_strays_are_reported() {
        let t0 = crate::test_epoch();
        let mut l = TransactionLayer::new(TimerConfig::default());
        let bye = request("BYE");
        let key = l.send_request(t0, bye.clone(), peer()).unwrap();
        assert!(l.poll_transmit().is_some());
        l.handle_message(
            t0,
            Message::Response(Response::to_request(&bye, StatusCode::OK)),
            peer(),
        );
        assert_eq!(
            l.poll_event(),
            Some(TxEvent::Response {
                key,
                response: Response::to_request(&bye, StatusCode::OK)
            })
        );
        let stray = Response::to_request(&request("OPTIONS"), StatusCode::OK);
        l.handle_message(t0, Message::Response(stray.clone()), peer());
        assert_eq!(l.poll_event(), Some(TxEvent::StrayResponse(stray)));
    }

    #[test]
    fn responses_follow_via_without_rport() {
        let mut r = invite();
        r.headers
            .set(HeaderName::Via, "SIP/2.0/UDP 10.9.9.9:5080;branch=z9hG4bK1");
        stamp_received(&mut r, "127.0.0.2:4000".parse().unwrap());
        let via = r.top_via().unwrap();
        assert_eq!(via.params.get("received"), Some(Some("127.0.0.2")));
        let resp = Message::Response(Response::to_request(&r, StatusCode::OK));
        let p = response_peer(
            Peer {
                transport: Transport::Udp,
                addr: "127.0.0.2:4000".parse().unwrap(),
            },
            &resp,
        );
        assert_eq!(p.addr, "127.0.0.2:5080".parse().unwrap());
    }
}
