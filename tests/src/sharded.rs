//! Several engine shards and their hub in virtual time: a [`ShardedNet`] routes each SIP
//! message to the shard its Call-ID hashes to, exactly as the driver's control loop will
//! ([`RouteKey::of_message`]; a message with no Call-ID to read by its source address),
//! and carries the messages between the shards and the [`Hub`] over FIFO links that are
//! immediate, delayed or jittered. Each shard is a [`Net`] (its own SIP, RTP and events), so the
//! scripted callers and phones of [`crate::caller`] work unchanged.

use crate::caller::{ENGINE_SIP, Handoff, Net, SipNet};
use ivr_engine::hub::Hub;
use ivr_engine::hub_msg::{HubMsg, HubOutput, ShardId, ShardMsg};
use ivr_engine::shard::ShardSpec;
use ivr_engine::{CallHandle, EngineConfig, Event, Input};
use ivr_menus::Menus;
use ivr_sip::Transport;
use ivr_sip::message::Message;
use ivr_sip::parse::Limits;
use ivr_sip::route_key::{RouteKey, shard_of};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the messages between the shards and the hub travel (always first in, first out per
/// direction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Handed over as soon as the sender is done with its input.
    Immediate,
    /// Handed over this long after they were sent.
    Delayed(Duration),
    /// Handed over after a random delay up to `max` (drawn from `seed`), never before a
    /// message sent earlier on the same link.
    Jittered {
        /// The draws' seed.
        seed: u64,
        /// The longest delay.
        max: Duration,
    },
}

/// One direction of the links: messages in flight with when each is due, and the last
/// due time per shard (what keeps each shard's link first in, first out).
struct Flight<M> {
    queue: VecDeque<(Instant, ShardId, M)>,
    last: Vec<Instant>,
}

impl<M> Flight<M> {
    fn new(shards: usize, now: Instant) -> Flight<M> {
        Flight {
            queue: VecDeque::new(),
            last: vec![now; shards],
        }
    }

    fn push(&mut self, due: Instant, shard: ShardId, msg: M) {
        let last = &mut self.last[usize::from(shard)];
        *last = (*last).max(due);
        self.queue.push_back((*last, shard, msg));
    }

    /// The first message due by `now`: each shard's dues never go down, so it is the
    /// oldest one in flight on its shard's link.
    fn pop_due(&mut self, now: Instant) -> Option<(ShardId, M)> {
        let i = self.queue.iter().position(|(due, ..)| *due <= now)?;
        self.queue.remove(i).map(|(_, shard, msg)| (shard, msg))
    }

    fn next_due(&self) -> Option<Instant> {
        self.queue.iter().map(|(due, ..)| *due).min()
    }
}

/// Shards, their hub and the links between them, in virtual time.
pub struct ShardedNet {
    /// The shards' engines, each in its own virtual network, by shard index.
    pub engines: Vec<Net>,
    /// The one owner of queue and agent state.
    pub hub: Hub,
    /// How hub messages travel.
    pub links: Link,
    /// The current virtual time.
    pub now: Instant,
    /// The routing key every shard shares.
    pub key: RouteKey,
    /// Messages to the hub in flight, by the shard that sent them.
    to_hub: Flight<HubMsg>,
    /// Messages to shards in flight.
    to_shards: Flight<ShardMsg>,
    /// The jitter's random state.
    rng: u64,
    /// SIP messages a shard handed to another (the driver's handoff counter).
    pub handoffs: Vec<Handoff>,
    /// The hub's events (queue events, agents' registrations, failed authentications), in
    /// order, as the control loop would log them.
    pub hub_events: Vec<Event>,
    /// What the hub asked of the queued-callback store, in order.
    pub queue_callbacks: Vec<ivr_engine::QueueCallbackCmd>,
    /// SIP messages delivered to each shard (after routing).
    pub delivered: Vec<usize>,
}

impl ShardedNet {
    /// `count` shards serving `menus` with default settings.
    pub fn new(menus: Arc<Menus>, count: u16, links: Link) -> ShardedNet {
        ShardedNet::with_config(menus, count, links, |_| {})
    }

    /// `count` shards whose common config `tweak` may change (each then gets its place,
    /// seeds of its own and the shared routing key).
    pub fn with_config(
        menus: Arc<Menus>,
        count: u16,
        links: Link,
        tweak: impl Fn(&mut EngineConfig),
    ) -> ShardedNet {
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let key = RouteKey::new(*b"virtual shards!!");
        let engines = (0..count)
            .map(|index| {
                let mut config = EngineConfig::new(ENGINE_SIP.parse().expect("address"));
                tweak(&mut config);
                config.shard = ShardSpec { index, count, key };
                config.seed ^= u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                config.srtp_seed.0[0] ^= index as u8;
                Net::shard(menus.clone(), config, now)
            })
            .collect();
        let registrar = ivr_sip::registrar::RegistrarConfig::default();
        let mut net = ShardedNet {
            engines,
            hub: Hub::new(menus, 0x0048_5542, count, registrar, [7; 32]),
            links,
            now,
            key,
            to_hub: Flight::new(usize::from(count), now),
            to_shards: Flight::new(usize::from(count), now),
            rng: match links {
                Link::Jittered { seed, .. } => seed | 1,
                _ => 1,
            },
            handoffs: Vec::new(),
            hub_events: Vec::new(),
            queue_callbacks: Vec::new(),
            delivered: vec![0; usize::from(count)],
        };
        // The center's first configuration (static agents log in).
        net.hub.handle(now, HubMsg::Sync);
        net.settle();
        net
    }

    /// The shard a message from `from` goes to: its Call-ID's, else its source's.
    pub fn route(&self, from: SocketAddr, data: &[u8]) -> ShardId {
        let n = self.engines.len() as u16;
        match self.key.of_message(data, &Limits::default()) {
            Some(h) => shard_of(h, n),
            None => shard_of(self.key.of_call_id(&from.to_string()), n),
        }
    }

    /// The shard a Call-ID belongs to.
    pub fn shard_of_call_id(&self, call_id: &str) -> ShardId {
        shard_of(self.key.of_call_id(call_id), self.engines.len() as u16)
    }

    /// Deliver SIP straight to shard `shard` (as a router that got it wrong would).
    pub fn send_sip_to(
        &mut self,
        shard: ShardId,
        transport: Transport,
        from: SocketAddr,
        data: &[u8],
    ) {
        let net = &mut self.engines[usize::from(shard)];
        net.now = self.now;
        self.delivered[usize::from(shard)] += 1;
        net.send_sip(transport, from, data);
        self.settle();
    }

    /// Deliver an RTP datagram to a leg's socket on the shard that owns the call.
    pub fn send_rtp(&mut self, leg: ivr_engine::LegHandle, from: SocketAddr, data: &[u8]) {
        let shard = (leg.call.0 >> 48) as usize;
        let net = &mut self.engines[shard];
        net.now = self.now;
        net.send_rtp(leg, from, data);
        self.settle();
    }

    /// Carry everything due now until nothing moves: hub messages (through the links),
    /// handoffs, the hub's answers.
    pub fn settle(&mut self) {
        loop {
            let mut moved = false;
            for (i, net) in self.engines.iter_mut().enumerate() {
                for msg in net.hub_out.drain(..) {
                    let due = self.now + delay(self.links, &mut self.rng);
                    self.to_hub.push(due, i as ShardId, msg);
                }
            }
            let handoffs: Vec<Handoff> = self
                .engines
                .iter_mut()
                .flat_map(|n| n.handoffs.drain(..))
                .collect();
            for h in handoffs {
                moved = true;
                self.handoffs.push(h.clone());
                let net = &mut self.engines[usize::from(h.shard)];
                net.now = self.now;
                net.send_sip(h.transport, h.from, &h.data);
            }
            while let Some((shard, msg)) = self.to_hub.pop_due(self.now) {
                moved = true;
                self.hub.handle_from(self.now, shard, msg);
                // What the control loop does after each hub turn.
                if self.hub.has_pending() {
                    self.hub.handle(self.now, HubMsg::Sync);
                }
                self.hub_outputs();
            }
            while let Some((shard, msg)) = self.to_shards.pop_due(self.now) {
                moved = true;
                let net = &mut self.engines[usize::from(shard)];
                net.now = self.now;
                net.engine.handle_input(self.now, Input::Hub(msg));
                net.pump();
            }
            if !moved && self.engines.iter().all(|n| n.hub_out.is_empty()) {
                return;
            }
        }
    }

    fn hub_outputs(&mut self) {
        while let Some(out) = self.hub.poll_output() {
            match out {
                HubOutput::Shard { shard, msg } => {
                    let due = self.now + delay(self.links, &mut self.rng);
                    self.to_shards.push(due, shard, msg);
                }
                HubOutput::Event {
                    call,
                    call_id,
                    at,
                    event,
                } => self.hub_events.push(Event::Queue {
                    call,
                    call_id,
                    at,
                    event,
                }),
                HubOutput::QueueCallback(cmd) => self.queue_callbacks.push(cmd),
                HubOutput::AuthFailed { from, method } => {
                    self.hub_events.push(Event::AuthFailed { from, method })
                }
                HubOutput::Agent { change, registered } => {
                    self.hub_events.push(Event::Agent { change, registered })
                }
            }
        }
    }

    /// The next deadline of any shard, the hub or a message in flight.
    fn next_deadline(&mut self) -> Option<Instant> {
        let shards = self.engines.iter_mut().filter_map(|n| n.pump()).min();
        [
            shards,
            self.hub.poll_timeout(),
            self.to_hub.next_due(),
            self.to_shards.next_due(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Everyone's timers and messages due at `self.now`.
    fn tick(&mut self) {
        for net in &mut self.engines {
            net.now = self.now;
            net.engine.handle_input(self.now, Input::Timeout);
            net.pump();
        }
        if self.hub.poll_timeout().is_some_and(|t| t <= self.now) {
            self.hub.handle_timeout(self.now);
            if self.hub.has_pending() {
                self.hub.handle(self.now, HubMsg::Sync);
            }
            self.hub_outputs();
        }
        self.settle();
    }

    /// Let `d` of virtual time pass, waking shards and hub at each deadline.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.next_deadline().filter(|t| *t <= end) {
            self.now = self.now.max(t);
            self.tick();
        }
        self.now = end;
        self.tick();
    }

    /// Every shard's events, shard by shard.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.engines.iter().flat_map(|n| n.events.iter())
    }

    /// The calls started on shard `shard`, in order.
    pub fn calls_on(&self, shard: ShardId) -> Vec<(CallHandle, String)> {
        self.engines[usize::from(shard)]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::CallStarted { call, call_id, .. } => Some((*call, call_id.clone())),
                _ => None,
            })
            .collect()
    }

    /// The calls in progress over all shards.
    pub fn call_count(&self) -> usize {
        self.engines.iter().map(|n| n.engine.call_count()).sum()
    }
}

impl SipNet for ShardedNet {
    /// Route by Call-ID (or source) as the control loop will, then settle.
    fn send_sip(&mut self, transport: Transport, from: SocketAddr, data: &[u8]) {
        let shard = self.route(from, data);
        self.send_sip_to(shard, transport, from, data);
    }

    /// What any shard sent to `to`, shard by shard.
    fn take_sip(&mut self, to: SocketAddr) -> Vec<Message> {
        self.engines
            .iter_mut()
            .flat_map(|n| n.take_sip(to))
            .collect()
    }
}

/// How long one message takes on `link` (xorshift draws for the jitter).
fn delay(link: Link, rng: &mut u64) -> Duration {
    match link {
        Link::Immediate => Duration::ZERO,
        Link::Delayed(d) => d,
        Link::Jittered { max, .. } => {
            *rng ^= *rng << 13;
            *rng ^= *rng >> 7;
            *rng ^= *rng << 17;
            let micros = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
            Duration::from_micros(*rng % micros.saturating_add(1))
        }
    }
}
