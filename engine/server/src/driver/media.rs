//! The media sockets, read by the loop itself.
//!
//! Every call's RTP and RTCP sockets are registered in one `mio` poll, whose descriptor
//! the loop waits on next to its channel. One wake-up reads every socket that has
//! datagrams, straight into one buffer, and hands each datagram to the engine: no task per
//! socket, no channel hop, no buffer per datagram. Issue 11 measured that path (two tasks per
//! leg, each packet woken, framed into a `Bytes` and sent through the loop's channel) as the
//! largest share of the engine's CPU per packet beyond the echo floor.
//!
//! Readiness is edge-triggered: a socket is read until it would block, at most
//! [`PER_SOCKET`] datagrams per turn; one left with data is read again next turn first, so a
//! flood on one port neither starves the other calls nor goes unread.

use super::*;
use mio::net::UdpSocket as MioUdp;
use mio::{Events, Interest, Poll, Token};
use tokio::io::unix::AsyncFd;

/// Ready sockets taken per poll of the set.
const EVENTS: usize = 256;
/// Datagrams read from one socket per turn before the others get theirs.
const PER_SOCKET: usize = 16;
/// Largest datagram read whole (RTP for G.711 at 20 ms is 172 bytes; SRTP adds a tag).
const DATAGRAM: usize = 8192;

/// The poll the loop waits on: readable when any media socket is.
pub type MediaPoll = AsyncFd<Poll>;

/// One leg's sockets.
struct Slot {
    leg: LegHandle,
    rtp: MioUdp,
    rtcp: MioUdp,
    port: u16,
    /// Its RTP, RTCP socket is on the list of those left with datagrams (read next turn,
    /// not again this one).
    queued: [bool; 2],
}

/// Every open media socket, by leg and by poll token (slot × 2, + 1 for RTCP).
pub struct MediaSet {
    registry: mio::Registry,
    events: Events,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    by_leg: HashMap<LegHandle, usize>,
    /// Sockets left with datagrams after their share of a turn.
    again: Vec<Token>,
    again_scratch: Vec<Token>,
    buf: Box<[u8]>,
}

/// What a read found, for the engine.
pub struct Datagram<'a> {
    /// The leg whose socket it came to.
    pub leg: LegHandle,
    /// It came to the RTCP socket (RTP port + 1).
    pub rtcp: bool,
    /// Its source.
    pub from: SocketAddr,
    /// Its bytes, valid until the next datagram.
    pub data: &'a [u8],
}

impl MediaSet {
    /// An empty set and the poll its sockets are registered with (in a tokio runtime's
    /// context, whose reactor then wakes the loop when a socket is readable).
    pub fn new() -> std::io::Result<(MediaPoll, MediaSet)> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        // `with_interest` is deprecated because an `AsRawFd` type may hand out a descriptor
        // it does not own or later changes; `Poll` owns its epoll descriptor for its whole
        // life and the `AsyncFd` owns the `Poll`, so the registration stays right, and the
        // crate forbids the `unsafe` its replacement needs.
        #[allow(deprecated)]
        let fd = AsyncFd::with_interest(poll, tokio::io::Interest::READABLE)?;
        let set = MediaSet {
            registry,
            events: Events::with_capacity(EVENTS),
            slots: Vec::new(),
            free: Vec::new(),
            by_leg: HashMap::new(),
            again: Vec::with_capacity(EVENTS),
            again_scratch: Vec::with_capacity(EVENTS),
            buf: vec![0u8; DATAGRAM].into_boxed_slice(),
        };
        Ok((fd, set))
    }

    /// Take `leg`'s bound, non-blocking sockets (RTP on `port`, RTCP on `port + 1`); returns
    /// the port of sockets `leg` had open before (closed now), for the pool.
    pub fn open(
        &mut self,
        leg: LegHandle,
        rtp: std::net::UdpSocket,
        rtcp: std::net::UdpSocket,
        port: u16,
    ) -> std::io::Result<Option<u16>> {
        let i = self.free.pop().unwrap_or(self.slots.len());
        let mut slot = Slot {
            leg,
            rtp: MioUdp::from_std(rtp),
            rtcp: MioUdp::from_std(rtcp),
            port,
            queued: [false; 2],
        };
        let registered = self
            .registry
            .register(&mut slot.rtp, Token(2 * i), Interest::READABLE)
            .and_then(|()| {
                self.registry
                    .register(&mut slot.rtcp, Token(2 * i + 1), Interest::READABLE)
            });
        if let Err(e) = registered {
            // Closing the sockets takes them out of the poll.
            self.free.push(i);
            return Err(e);
        }
        if i == self.slots.len() {
            self.slots.push(Some(slot));
        } else {
            self.slots[i] = Some(slot);
        }
        // The engine opens a leg's media once; should it open it again, the old sockets
        // close rather than leak, and their port goes back to the pool.
        Ok(self.by_leg.insert(leg, i).and_then(|old| self.release(old)))
    }

    /// Legs with sockets open.
    pub fn legs(&self) -> usize {
        self.by_leg.len()
    }

    /// Close `leg`'s sockets; returns their port for the pool.
    pub fn close(&mut self, leg: LegHandle) -> Option<u16> {
        let i = self.by_leg.remove(&leg)?;
        self.release(i)
    }

    fn release(&mut self, i: usize) -> Option<u16> {
        let mut slot = self.slots.get_mut(i)?.take()?;
        let _ = self.registry.deregister(&mut slot.rtp);
        let _ = self.registry.deregister(&mut slot.rtcp);
        // A leftover of these sockets must not count for those that take the slot next.
        self.again.retain(|t| t.0 / 2 != i);
        self.free.push(i);
        Some(slot.port)
    }

    /// Send `packet` from `leg`'s RTP socket (`None`: the leg has no media open). A full
    /// socket buffer drops the packet, as the network would.
    pub fn send(
        &self,
        leg: LegHandle,
        packet: &[u8],
        to: SocketAddr,
    ) -> Option<std::io::Result<usize>> {
        let i = *self.by_leg.get(&leg)?;
        let slot = self.slots.get(i)?.as_ref()?;
        Some(slot.rtp.send_to(packet, to))
    }

    /// Read what the ready sockets hold, handing each datagram to `feed`. Returns whether
    /// some is left for the next turn (then the poll's readiness must stay set).
    pub fn read(&mut self, poll: &mut Poll, mut feed: impl FnMut(Datagram<'_>)) -> bool {
        let MediaSet {
            events,
            slots,
            again,
            again_scratch,
            buf,
            ..
        } = self;
        // Those left over from the last turn first.
        std::mem::swap(again, again_scratch);
        for &token in again_scratch.iter() {
            if let Some(Some(slot)) = slots.get_mut(token.0 / 2) {
                slot.queued[token.0 % 2] = false;
            }
            read_socket(slots, again, buf, token, &mut feed);
        }
        again_scratch.clear();
        if let Err(e) = poll.poll(events, Some(Duration::ZERO)) {
            // EINTR and the like: the readiness stays, the next turn polls again.
            debug!(error = %e, "media poll failed");
            return true;
        }
        let mut ready = 0;
        for event in events.iter() {
            ready += 1;
            let token = event.token();
            // Read above and left with more: its share of this turn is taken; it is read
            // first next turn. (Read twice, it got twice its share and went on the list
            // twice, and so on, turn after turn, while a flood lasted.)
            if let Some(Some(slot)) = slots.get(token.0 / 2)
                && slot.queued[token.0 % 2]
            {
                continue;
            }
            read_socket(slots, again, buf, token, &mut feed);
        }
        ready >= EVENTS || !again.is_empty()
    }
}

/// Read one socket until it would block, at most [`PER_SOCKET`] datagrams; one with more
/// goes on `again`.
fn read_socket(
    slots: &mut [Option<Slot>],
    again: &mut Vec<Token>,
    buf: &mut [u8],
    token: Token,
    feed: &mut impl FnMut(Datagram<'_>),
) {
    let rtcp = token.0 % 2 == 1;
    let Some(Some(slot)) = slots.get_mut(token.0 / 2) else {
        return; // closed since it was ready
    };
    let sock = if rtcp { &slot.rtcp } else { &slot.rtp };
    for _ in 0..PER_SOCKET {
        match sock.recv_from(buf) {
            Ok((n, from)) => feed(Datagram {
                leg: slot.leg,
                rtcp,
                from,
                data: &buf[..n],
            }),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            // ICMP port unreachable and the like surface here: keep reading.
            Err(e) => debug!(leg = %slot.leg, error = %e, "RTP receive error"),
        }
    }
    slot.queued[token.0 % 2] = true;
    again.push(token);
}

/// Open legs from which the sockets are read on the loop's own wake-ups (ticked), and below
/// which they go back to waking the loop when readable.
const TICKED_FROM: usize = 32;
const TICKED_BELOW: usize = 16;
/// Ticked: the shortest time between two reads (a wake-up sooner does not read) ...
const TICK_MIN: Duration = Duration::from_millis(1);
/// ... and the longest (the loop wakes for it if nothing else woke it).
const TICK_MAX: Duration = Duration::from_millis(2);

/// How the loop learns that the media sockets hold datagrams.
///
/// With few calls, the poll wakes the loop when a socket is readable (`ready`). With many,
/// that is a wake-up (a context switch) for nearly every arriving packet, on top of the
/// wake-ups of RTP pacing, which under load come about every millisecond anyway: the
/// poll is then taken out of the reactor (an armed nested epoll wakes the thread on every
/// new event, awaited or not) and the sockets are read on the loop's own wake-ups, at most
/// once per [`TICK_MIN`] and at least once per [`TICK_MAX`] (`ticked`). A datagram then
/// waits at most about 2 ms in its socket; the received audio is played out or relayed on
/// the 20 ms schedule, so nothing heard changes.
pub struct MediaWait {
    ready: Option<MediaPoll>,
    ticked: Option<Poll>,
    last_read: tokio::time::Instant,
    /// The last read left datagrams in some socket: edge-triggered, no new readiness comes
    /// for them, so the loop reads again without waiting for one.
    left: bool,
}

impl MediaWait {
    /// Starts waking on readiness.
    pub fn new(poll: MediaPoll) -> MediaWait {
        MediaWait {
            ready: Some(poll),
            ticked: None,
            last_read: tokio::time::Instant::now(),
            left: false,
        }
    }

    /// The poll, to read the sockets through.
    pub fn poll_mut(&mut self) -> Option<&mut Poll> {
        match &mut self.ready {
            Some(fd) => Some(fd.get_mut()),
            None => self.ticked.as_mut(),
        }
    }

    /// Choose the way of waiting for `legs` open legs (with hysteresis).
    pub fn adapt(&mut self, legs: usize) {
        if legs >= TICKED_FROM
            && let Some(fd) = self.ready.take()
        {
            self.ticked = Some(fd.into_inner());
        } else if legs < TICKED_BELOW
            && let Some(poll) = self.ticked.take()
        {
            // See `MediaSet::new` for why the deprecated form is right here.
            #[allow(deprecated)]
            match AsyncFd::try_with_interest(poll, tokio::io::Interest::READABLE) {
                Ok(fd) => self.ready = Some(fd),
                Err(e) => {
                    let (poll, e) = e.into_parts();
                    debug!(error = %e, "media poll stays ticked");
                    self.ticked = Some(poll);
                }
            }
        }
    }

    /// Ticked: whether the sockets are to be read at this wake-up (then it counts as read).
    pub fn take_due(&mut self, now: tokio::time::Instant) -> bool {
        if self.ticked.is_some() && now >= self.last_read + TICK_MIN {
            self.last_read = now;
            return true;
        }
        false
    }

    /// Ticked: when the loop must wake to read the sockets.
    pub fn deadline(&self) -> Option<tokio::time::Instant> {
        self.ticked.as_ref().map(|_| self.last_read + TICK_MAX)
    }

    /// Whether the last read (by [`MediaSet::read`]) left datagrams for the next turn.
    pub fn set_left(&mut self, left: bool) {
        self.left = left;
    }

    /// Waking on readiness: resolves when the sockets are to be read (readable, or left
    /// with datagrams by the last read, whichever branch of the loop made it); never when
    /// ticked (the ticks read them).
    pub async fn readable(&mut self) {
        match &mut self.ready {
            Some(_) if self.left => {}
            // Cleared before the read, which then takes all that came up to it: a datagram
            // after it makes the poll readable again.
            Some(fd) => match fd.readable_mut().await {
                Ok(mut guard) => guard.clear_ready(),
                Err(_) => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ivr_engine::CallHandle;

    fn open(set: &mut MediaSet, call: u64) -> SocketAddr {
        let rtp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let rtcp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rtp.set_nonblocking(true).unwrap();
        rtcp.set_nonblocking(true).unwrap();
        let to = rtp.local_addr().unwrap();
        set.open(CallHandle(call).leg(0), rtp, rtcp, to.port())
            .unwrap();
        to
    }

    fn flood(to: SocketAddr, n: usize) {
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..n {
            tx.send_to(&[0x80; 12], to).unwrap();
        }
    }

    /// A socket left with datagrams by a read outside the readiness branch (the channel's
    /// turn reads the media too) is read again without a new datagram: edge-triggered, no
    /// new edge comes for what is already queued.
    #[tokio::test(flavor = "current_thread")]
    async fn leftovers_of_the_channels_turn_wake_the_loop() {
        let (poll, mut set) = MediaSet::new().unwrap();
        let mut wait = MediaWait::new(poll);
        let to = open(&mut set, 1);
        flood(to, 40);
        let mut n = 0;
        let left = set.read(wait.poll_mut().unwrap(), |_| n += 1);
        assert_eq!((n, left), (PER_SOCKET, true));
        wait.set_left(left); // as `Io::read_media` does after every read
        let woke = tokio::time::timeout(Duration::from_millis(200), wait.readable()).await;
        assert!(
            woke.is_ok(),
            "24 datagrams left in the socket and the loop not woken"
        );
    }

    /// A flooded socket gets at most its share per turn, however long the flood lasts: a
    /// socket left over from the last turn and also ready again is read once, not once for
    /// each (which let its share and the list of leftovers grow turn after turn).
    #[tokio::test(flavor = "current_thread")]
    async fn a_flooded_socket_gets_its_share_per_turn_and_no_more() {
        let (poll, mut set) = MediaSet::new().unwrap();
        let mut wait = MediaWait::new(poll);
        let to = open(&mut set, 1);
        let mut read = 0;
        for turn in 0..6 {
            flood(to, 24);
            let mut n = 0;
            set.read(wait.poll_mut().unwrap(), |_| n += 1);
            assert!(
                n <= PER_SOCKET,
                "turn {turn}: {n} datagrams from one socket"
            );
            assert!(
                set.again.len() <= 1,
                "turn {turn}: {:?} left over",
                set.again
            );
            read += n;
        }
        // Nothing is lost: the rest comes over the next turns.
        while set.read(wait.poll_mut().unwrap(), |_| read += 1) {}
        assert_eq!(read, 6 * 24);
    }

    /// Leftovers of the last ticked read are read when the loop goes back to waking on
    /// readiness (the calls fell below [`TICKED_BELOW`]).
    #[tokio::test(flavor = "current_thread")]
    async fn leftovers_of_the_ticks_are_read_after_the_switch_back() {
        let (poll, mut set) = MediaSet::new().unwrap();
        let mut wait = MediaWait::new(poll);
        let to = open(&mut set, 0);
        for call in 1..TICKED_FROM as u64 {
            open(&mut set, call);
        }
        wait.adapt(set.legs());
        assert!(wait.deadline().is_some(), "ticked with {} legs", set.legs());
        flood(to, 40);
        let mut n = 0;
        let left = set.read(wait.poll_mut().unwrap(), |_| n += 1);
        wait.set_left(left);
        assert_eq!(n, PER_SOCKET);
        for call in 1..TICKED_FROM as u64 {
            set.close(CallHandle(call).leg(0));
        }
        wait.adapt(set.legs());
        assert!(wait.deadline().is_none(), "back on readiness");
        let woke = tokio::time::timeout(Duration::from_millis(200), wait.readable()).await;
        assert!(
            woke.is_ok(),
            "datagrams left from the ticks and the loop not woken"
        );
        let left = set.read(wait.poll_mut().unwrap(), |_| n += 1);
        assert_eq!((n, left), (32, true));
    }

    /// A closed leg's leftover does not carry over to the leg that takes its slot.
    #[tokio::test(flavor = "current_thread")]
    async fn a_closed_legs_leftover_is_forgotten() {
        let (poll, mut set) = MediaSet::new().unwrap();
        let mut wait = MediaWait::new(poll);
        let to = open(&mut set, 1);
        flood(to, 20);
        assert!(set.read(wait.poll_mut().unwrap(), |_| {}));
        set.close(CallHandle(1).leg(0));
        assert!(set.again.is_empty());
        let to = open(&mut set, 2);
        flood(to, 3);
        let mut legs = Vec::new();
        let left = set.read(wait.poll_mut().unwrap(), |d| legs.push(d.leg));
        assert!(!left);
        assert_eq!(legs, vec![CallHandle(2).leg(0); 3]);
    }

    /// RTP sent toward a port nobody listens on comes back as ICMP port unreachable, which
    /// Linux reports on an unconnected socket (ours) only with IP_RECVERR, not set: no error
    /// is pending after it. A datagram larger than the buffer is cut to it and the next one is
    /// read whole. Neither stops the socket from being read, nor panics.
    #[tokio::test(flavor = "current_thread")]
    async fn refused_sends_and_oversized_datagrams_are_read_past() {
        let (poll, mut set) = MediaSet::new().unwrap();
        let mut wait = MediaWait::new(poll);
        let leg = CallHandle(1).leg(0);
        let to = open(&mut set, 1);
        let gone = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let nobody = gone.local_addr().unwrap();
        drop(gone);
        for _ in 0..3 {
            assert!(set.send(leg, &[0x80; 12], nobody).is_some());
        }
        std::thread::sleep(Duration::from_millis(20));
        let slot = set.slots[0].as_ref().unwrap();
        assert!(slot.rtp.take_error().unwrap().is_none());
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(&vec![0x80; DATAGRAM + 1000], to).unwrap();
        tx.send_to(&[0x80; 12], to).unwrap();
        let mut sizes = Vec::new();
        let mut turns = 0;
        while sizes.len() < 2 && turns < 4 {
            turns += 1;
            let left = set.read(wait.poll_mut().unwrap(), |d| sizes.push(d.data.len()));
            assert!(!left, "nothing left over");
        }
        assert_eq!(sizes, vec![DATAGRAM, 12]);
    }

    /// A leg's media opened again closes the old sockets and gives their port back for the
    /// pool, rather than keep it out of the pool for good.
    #[tokio::test(flavor = "current_thread")]
    async fn media_opened_twice_gives_the_old_port_back() {
        let (_poll, mut set) = MediaSet::new().unwrap();
        let first = open(&mut set, 1);
        let rtp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let rtcp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let old = set.open(CallHandle(1).leg(0), rtp, rtcp, 7000).unwrap();
        assert_eq!(old, Some(first.port()));
        assert_eq!(set.legs(), 1);
        assert_eq!(set.close(CallHandle(1).leg(0)), Some(7000));
        assert_eq!(set.close(CallHandle(1).leg(0)), None);
    }
}
