//! Where SIP that arrives goes: to the one loop, or, with shards, through the source gate
//! to the shard its Call-ID hashes to (RFC 3261 §8.1.1.4: every message of a dialog or
//! transaction carries its Call-ID, so one shard sees them all).
//!
//! The socket readers and connection tasks route each message themselves, so SIP never
//! takes a hop through another thread: a TCP connection waits for its shard's channel
//! (its peer does not retransmit), a datagram waits like the socket's buffer would.

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
            SipIn::Shards(router) => {
                for s in &router.shards {
                    let tx = tx.clone();
                    s.send(NetIn::TcpOpen { peer, tx }).await.map_err(|_| ())?;
                }
                Ok(())
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
                for s in &router.shards {
                    let _ = s.send(NetIn::TcpClosed { peer }).await;
                }
            }
        }
    }
}

/// The shards' inputs, the key that routes SIP among them, and the gate in front of them.
pub(crate) struct Router {
    /// Each shard's input, by index.
    pub(crate) shards: Vec<mpsc::Sender<NetIn>>,
    key: RouteKey,
    limits: Limits,
    /// The per-source request rate and bans, counted whole for every shard.
    gate: Mutex<SourceGate>,
    status: Arc<Status>,
}

impl Router {
    /// A router over `shards` with a secret `key`, gating with `gate`.
    pub(crate) fn new(
        shards: Vec<mpsc::Sender<NetIn>>,
        key: RouteKey,
        gate: SourceGate,
        status: Arc<Status>,
    ) -> Router {
        Router {
            shards,
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
        match self.key.of_message(data, &self.limits) {
            Some(h) => shard_of(h, n),
            None => {
                let h = match from.ip().to_canonical() {
                    std::net::IpAddr::V4(a) => u64::from(u32::from(a)),
                    std::net::IpAddr::V6(a) => {
                        let b = u128::from(a);
                        (b as u64) ^ ((b >> 64) as u64)
                    }
                };
                shard_of(h, n)
            }
        }
    }

    /// The gate, then the shard's channel.
    async fn route(&self, transport: Transport, from: SocketAddr, data: Bytes) -> Result<(), ()> {
        if !self.admit(from) {
            return Ok(());
        }
        let shard = usize::from(self.shard_for(from, &data));
        self.shards[shard]
            .send(NetIn::Sip {
                transport,
                from,
                data,
            })
            .await
            .map_err(|_| ())
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
