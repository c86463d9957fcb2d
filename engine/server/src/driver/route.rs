//! Where SIP that arrives goes: to the one loop, or, with shards, through the source gate
//! to the shard its Call-ID hashes to (RFC 3261 §8.1.1.4: every message of a dialog or
//! transaction carries its Call-ID, so one shard sees them all).
//!
//! The socket readers and connection tasks route each message themselves, so SIP never
//! takes a hop through another thread: a TCP connection waits for its shard's channel
//! (its peer does not retransmit), a datagram for a full shard is dropped like a full
//! socket buffer would drop it, so that one shard behind never stalls the others.

use super::*;
use ivr_engine::admission::SourceGate;
use ivr_sip::parse::Limits;
use ivr_sip::route_key::{RouteKey, shard_of};
use std::sync::Mutex;

/// Where the SIP readers send what they read.
#[derive(Clone)]
pub(crate) enum SipIn {
    /// The one loop (its engine keeps its own gate).
    One(mpsc::Sender<NetIn>),
    /// The shards, behind the gate.
    Shards(Arc<Router>),
}

impl SipIn {
    /// A SIP message from `from`; `Err` once the loops are gone (the reader stops).
    pub(crate) async fn sip(
        &self,
        transport: Transport,
        from: SocketAddr,
        data: Bytes,
    ) -> Result<(), ()> {
        match self {
            SipIn::One(tx) => tx
                .send(NetIn::Sip {
                    transport,
                    from,
                    data,
                })
                .await
                .map_err(|_| ()),
            SipIn::Shards(router) => router.route(transport, from, data).await,
        }
    }

    /// A connection's first message came (`tx` writes to it), or one we opened is up:
    /// every loop may answer over it, so every loop hears of it.
    pub(crate) async fn opened(
        &self,
        peer: SocketAddr,
        tx: mpsc::Sender<Vec<u8>>,
    ) -> Result<(), ()> {
        match self {
            SipIn::One(t) => t.send(NetIn::TcpOpen { peer, tx }).await.map_err(|_| ()),
            // On each shard's control link (see `ShardCtl::TcpOpen`). A shard that has
            // ended (a stop: it drained before the others) does not hear of it; the
            // others still do.
            SipIn::Shards(router) => {
                let mut heard = false;
                for link in &router.links {
                    let tx = tx.clone();
                    heard |= link
                        .upgrade()
                        .is_some_and(|l| l.send(ShardCtl::TcpOpen { peer, tx }).is_ok());
                }
                if heard { Ok(()) } else { Err(()) }
            }
        }
    }

    /// The connection to `peer` closed.
    pub(crate) async fn closed(&self, peer: SocketAddr) {
        match self {
            SipIn::One(t) => {
                let _ = t.send(NetIn::TcpClosed { peer }).await;
            }
            SipIn::Shards(router) => {
                for link in router.links.iter().filter_map(|l| l.upgrade()) {
                    let _ = link.send(ShardCtl::TcpClosed { peer });
                }
            }
        }
    }
}

/// The shards' inputs, the key that routes SIP among them, and the gate in front of them.
pub(crate) struct Router {
    /// Each shard's input, by index.
    pub(crate) shards: Vec<mpsc::Sender<NetIn>>,
    /// Each shard's control link, by index, for its connections' news (weak: a shard's
    /// link closes when the control thread is gone, though the router lives on).
    links: Vec<mpsc::WeakUnboundedSender<ShardCtl>>,
    key: RouteKey,
    limits: Limits,
    /// The per-source request rate and bans, counted whole for every shard.
    gate: Mutex<SourceGate>,
    status: Arc<Status>,
}

impl Router {
    /// A router over `shards` (their inputs and control links) with a secret `key`,
    /// gating with `gate`.
    pub(crate) fn new(
        shards: Vec<mpsc::Sender<NetIn>>,
        links: &[mpsc::UnboundedSender<ShardCtl>],
        key: RouteKey,
        gate: SourceGate,
        status: Arc<Status>,
    ) -> Router {
        Router {
            shards,
            links: links.iter().map(|l| l.downgrade()).collect(),
            key,
            limits: Limits::default(),
            gate: Mutex::new(gate),
            status,
        }
    }

    /// The shard for a message from `from`: its Call-ID's; a message with none to read
    /// (garbage, keep-alives) goes by its source address, so that one source's garbage
    /// keeps to one shard, which answers it as a single engine would.
    pub(crate) fn shard_for(&self, from: SocketAddr, data: &[u8]) -> ShardId {
        let n = self.shards.len() as ShardId;
        // Keyed too: `shard_of` reads the top bits, where an IPv4 address as a number has
        // none (every such source went to shard 0), and no source can aim at a shard.
        let h = self
            .key
            .of_message(data, &self.limits)
            .unwrap_or_else(|| self.key.of_source(from.ip()));
        shard_of(h, n)
    }

    /// The gate, then the shard's channel; `Err` never (a shard that has ended, during a
    /// stop, loses what comes for it, and the reader goes on for the shards still
    /// draining: their callers' BYEs must still be read). A datagram for a shard whose input is full is
    /// dropped, as a full socket buffer would drop it (its sender retransmits): waiting
    /// would hold every other shard's datagrams behind the one shard that is behind. A
    /// stream's message waits (its peer does not retransmit), holding up only its own
    /// connection.
    async fn route(&self, transport: Transport, from: SocketAddr, data: Bytes) -> Result<(), ()> {
        if !self.admit(from) {
            return Ok(());
        }
        let shard = usize::from(self.shard_for(from, &data));
        let msg = NetIn::Sip {
            transport,
            from,
            data,
        };
        if transport == Transport::Udp {
            if let Err(mpsc::error::TrySendError::Full(_)) = self.shards[shard].try_send(msg) {
                self.status.sip_shard_full();
            }
        } else {
            let _ = self.shards[shard].send(msg).await;
        }
        Ok(())
    }

    /// Whether the gate lets a message from `from` through (its bans are logged here).
    fn admit(&self, from: SocketAddr) -> bool {
        let mut gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        let ok = gate.request(Instant::now(), from.ip());
        while let Some(e) = gate.poll_event() {
            io::log_admission(&self.status, e);
        }
        ok
    }

    /// The hub saw a failed authentication from `from`: counted toward its ban.
    pub(crate) fn auth_failed(&self, from: SocketAddr) {
        let mut gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        gate.auth_failed(Instant::now(), from.ip());
        while let Some(e) = gate.poll_event() {
            io::log_admission(&self.status, e);
        }
    }

    /// A shard parsed a message that another owns (the router's pre-parser disagreed with
    /// the parser: it never should): hand it to its owner, as it came.
    pub(crate) fn hand_over(
        &self,
        shard: ShardId,
        transport: Transport,
        from: SocketAddr,
        data: Vec<u8>,
    ) {
        let Some(tx) = self.shards.get(usize::from(shard)) else {
            return;
        };
        self.status.sip_handoff();
        let msg = NetIn::Sip {
            transport,
            from,
            data: Bytes::from(data),
        };
        if tx.try_send(msg).is_err() {
            warn!(
                shard,
                "a SIP message handed to another shard was dropped: its input is full"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ivr_engine::admission::AdmissionConfig;

    fn router(shards: Vec<mpsc::Sender<NetIn>>) -> Router {
        router_with(shards, &[])
    }

    fn router_with(
        shards: Vec<mpsc::Sender<NetIn>>,
        links: &[mpsc::UnboundedSender<ShardCtl>],
    ) -> Router {
        let status = Arc::new(Status::new("test".into(), std::time::SystemTime::now()));
        let gate = SourceGate::new(AdmissionConfig::default(), Vec::new());
        Router::new(shards, links, RouteKey::new([7; 16]), gate, status)
    }

    fn options(call_id: &str) -> Bytes {
        Bytes::from(format!(
            "OPTIONS sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-1\r\n\
             From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: {call_id}\r\n\
             CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        ))
    }

    /// A Call-ID that `router` sends to `shard`.
    fn call_id_for(router: &Router, shard: ShardId) -> String {
        let from: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        (0..)
            .map(|i| format!("cid-{i}"))
            .find(|c| router.shard_for(from, &options(c)) == shard)
            .unwrap()
    }

    /// A shard whose input is full costs its own datagrams, not the other shards': the
    /// one UDP reader does not wait for it.
    #[tokio::test]
    async fn a_full_shard_does_not_hold_up_the_others_datagrams() {
        let (tx0, mut rx0) = mpsc::channel(1);
        let (tx1, mut rx1) = mpsc::channel(1);
        let r = router(vec![tx0, tx1]);
        let (busy, free) = (call_id_for(&r, 0), call_id_for(&r, 1));
        let from: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let wait = Duration::from_secs(2);
        for _ in 0..3 {
            let routed = r.route(Transport::Udp, from, options(&busy));
            assert_eq!(tokio::time::timeout(wait, routed).await, Ok(Ok(())));
        }
        let routed = r.route(Transport::Udp, from, options(&free));
        assert_eq!(tokio::time::timeout(wait, routed).await, Ok(Ok(())));
        assert!(matches!(rx1.try_recv(), Ok(NetIn::Sip { .. })));
        assert!(matches!(rx0.try_recv(), Ok(NetIn::Sip { .. })));
        assert!(
            rx0.try_recv().is_err(),
            "the datagrams past a full input are dropped"
        );
    }

    /// A shard that has ended (it drained first in a stop) costs its own messages only:
    /// the readers go on for the shards still draining, and the others hear of new
    /// connections.
    #[tokio::test]
    async fn an_ended_shard_does_not_stop_the_readers() {
        let (tx0, rx0) = mpsc::channel(8);
        let (tx1, mut rx1) = mpsc::channel(8);
        let (link0, link0_rx) = mpsc::unbounded_channel();
        let (link1, mut link1_rx) = mpsc::unbounded_channel();
        let r = router_with(vec![tx0, tx1], &[link0.clone(), link1.clone()]);
        let (gone, live) = (call_id_for(&r, 0), call_id_for(&r, 1));
        drop((rx0, link0_rx));
        let from: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        for transport in [Transport::Udp, Transport::Tcp] {
            assert_eq!(r.route(transport, from, options(&gone)).await, Ok(()));
            assert_eq!(r.route(transport, from, options(&live)).await, Ok(()));
            assert!(matches!(rx1.try_recv(), Ok(NetIn::Sip { .. })));
        }
        let sip_in = SipIn::Shards(Arc::new(r));
        let (conn, _conn_rx) = mpsc::channel(1);
        assert_eq!(sip_in.opened(from, conn).await, Ok(()));
        assert!(matches!(link1_rx.try_recv(), Ok(ShardCtl::TcpOpen { .. })));
    }

    /// A connection's news go on each shard's control link, the link the hub's answers
    /// take: a shard hears of the connection before any offer its traffic caused (an
    /// agent registering over it), and, taking that link before each SIP message, before
    /// the connection's first message.
    #[tokio::test]
    async fn connections_are_announced_on_the_control_links() {
        let (tx0, mut rx0) = mpsc::channel(8);
        let (link0, mut link0_rx) = mpsc::unbounded_channel();
        let sip_in = SipIn::Shards(Arc::new(router_with(
            vec![tx0],
            std::slice::from_ref(&link0),
        )));
        let from: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let (conn, _conn_rx) = mpsc::channel(1);
        assert_eq!(sip_in.opened(from, conn).await, Ok(()));
        assert_eq!(sip_in.sip(Transport::Tcp, from, options("c")).await, Ok(()));
        sip_in.closed(from).await;
        assert!(matches!(link0_rx.try_recv(), Ok(ShardCtl::TcpOpen { peer, .. }) if peer == from));
        assert!(matches!(link0_rx.try_recv(), Ok(ShardCtl::TcpClosed { peer }) if peer == from));
        assert!(matches!(rx0.try_recv(), Ok(NetIn::Sip { .. })));
        assert!(rx0.try_recv().is_err(), "nothing else on the SIP input");
        // Once the control thread is gone, its links are closed: no one hears.
        drop((link0, link0_rx));
        let (conn, _conn_rx) = mpsc::channel(1);
        assert_eq!(sip_in.opened(from, conn).await, Err(()));
    }

    /// Messages with no Call-ID go by their source, and IPv4 sources spread over the
    /// shards (they all went to shard 0 while the address was hashed as a small number).
    #[test]
    fn sources_without_a_call_id_spread_over_the_shards() {
        let (tx0, _rx0) = mpsc::channel(1);
        let (tx1, _rx1) = mpsc::channel(1);
        let r = router(vec![tx0, tx1]);
        let shards: std::collections::BTreeSet<ShardId> = (1..=32u8)
            .map(|i| r.shard_for(SocketAddr::from(([10, 0, 0, i], 5060)), b"\r\n\r\n"))
            .collect();
        assert_eq!(shards, [0, 1].into());
        let from = SocketAddr::from(([10, 0, 0, 9], 5060));
        assert_eq!(
            r.shard_for(from, b"garbage"),
            r.shard_for(SocketAddr::from(([10, 0, 0, 9], 7000)), b"other garbage"),
            "one source's garbage keeps to one shard"
        );
    }
}
