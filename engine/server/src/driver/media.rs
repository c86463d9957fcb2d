//! The media sockets, read by the loop itself.
//!
//! Every call's RTP and RTCP sockets are registered in one epoll set, whose descriptor
//! the loop waits on next to its channel. One wake-up reads every socket that has
//! datagrams, straight into one buffer, and hands each datagram to the engine: no task per
//! socket, no channel hop, no buffer per datagram. Issue 11 measured that path (two tasks per
//! leg, each packet woken, framed into a `Bytes` and sent through the loop's channel) as the
//! largest share of the engine's CPU per packet beyond the echo floor.
//!
//! The poll is epoll in level-triggered mode (by `rustix`): a socket that still holds
//! datagrams after its share of a turn is reported again at the next, so a turn need not
//! read a socket until it would block. Waking on readiness (few calls) a socket is read until
//! it would block, at most [`PER_SOCKET`] datagrams; read on the loop's ticks (many calls)
//! it gives one datagram per tick, which is one `recvfrom` per packet: the read that only
//! learnt "nothing more" (`EAGAIN`) was a third of the media syscalls. A flood on one port
//! neither starves the other calls nor goes unread beyond what its socket buffer holds.

use super::*;
use rustix::buffer::spare_capacity;
use rustix::event::epoll;
use std::net::UdpSocket;
use std::os::fd::OwnedFd;
use tokio::io::unix::AsyncFd;

/// Ready sockets taken per poll of the set.
const EVENTS: usize = 256;
/// Datagrams read from one socket per turn, waking on readiness, before the others get theirs.
pub const PER_SOCKET: usize = 16;
/// Largest datagram read whole (RTP for G.711 at 20 ms is 172 bytes; SRTP adds a tag).
const DATAGRAM: usize = 8192;
/// A poll of the set that does not wait.
const NO_WAIT: rustix::event::Timespec = rustix::event::Timespec {
    tv_sec: 0,
    tv_nsec: 0,
};

/// The poll the loop waits on: readable when any media socket is.
pub type MediaPoll = AsyncFd<OwnedFd>;

/// How much of a ready socket one turn takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Share {
    /// Until it would block, at most [`PER_SOCKET`] datagrams.
    Drain,
    /// One datagram: the rest is reported again by the next poll (level-triggered).
    One,
}

/// One leg's sockets.
struct Slot {
    leg: LegHandle,
    rtp: UdpSocket,
    rtcp: UdpSocket,
    port: u16,
}

/// Every open media socket, by leg and by poll token (slot × 2, + 1 for RTCP).
pub struct MediaSet {
    /// The epoll set the sockets are registered in (a duplicate of the poll's descriptor).
    epoll: OwnedFd,
    events: Vec<epoll::Event>,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    by_leg: HashMap<LegHandle, usize>,
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
        let poll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let registry = poll.try_clone()?;
        // `with_interest` is deprecated because an `AsRawFd` type may hand out a descriptor
        // it does not own or later changes; an `OwnedFd` owns its epoll descriptor for its
        // whole life and the `AsyncFd` owns the `OwnedFd`, so the registration stays right,
        // and the crate forbids the `unsafe` its replacement needs.
        #[allow(deprecated)]
        let fd = AsyncFd::with_interest(poll, tokio::io::Interest::READABLE)?;
        let set = MediaSet {
            epoll: registry,
            events: Vec::with_capacity(EVENTS),
            slots: Vec::new(),
            free: Vec::new(),
            by_leg: HashMap::new(),
            buf: vec![0u8; DATAGRAM].into_boxed_slice(),
        };
        Ok((fd, set))
    }

    /// Take `leg`'s bound, non-blocking sockets (RTP on `port`, RTCP on `port + 1`); returns
    /// the port of sockets `leg` had open before (closed now), for the pool.
    pub fn open(
        &mut self,
        leg: LegHandle,
        rtp: UdpSocket,
        rtcp: UdpSocket,
        port: u16,
    ) -> std::io::Result<Option<u16>> {
        let i = self.free.pop().unwrap_or(self.slots.len());
        let slot = Slot {
            leg,
            rtp,
            rtcp,
            port,
        };
        // Level-triggered (no EPOLLET): see the module's doc.
        let flags = epoll::EventFlags::IN;
        let registered = epoll::add(
            &self.epoll,
            &slot.rtp,
            epoll::EventData::new_u64(2 * i as u64),
            flags,
        )
        .and_then(|()| {
            epoll::add(
                &self.epoll,
                &slot.rtcp,
                epoll::EventData::new_u64(2 * i as u64 + 1),
                flags,
            )
        });
        if let Err(e) = registered {
            // Closing the sockets takes them out of the poll.
            self.free.push(i);
            return Err(e.into());
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
        let slot = self.slots.get_mut(i)?.take()?;
        // Closing would take them out too (no duplicates of these descriptors exist); said
        // explicitly so that no event of theirs is reported to the slot's next leg.
        let _ = epoll::delete(&self.epoll, &slot.rtp);
        let _ = epoll::delete(&self.epoll, &slot.rtcp);
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

    /// Read what the ready sockets hold, `share` of each, handing each datagram to `feed`.
    /// Returns whether some may be left for the next turn (then a loop waking on readiness
    /// must read again without waiting for it: the reactor's own wake-up for the poll
    /// is edge-triggered).
    pub fn read(
        &mut self,
        poll: &OwnedFd,
        share: Share,
        mut feed: impl FnMut(Datagram<'_>),
    ) -> bool {
        let MediaSet {
            events, slots, buf, ..
        } = self;
        // A poll gives at most EVENTS sockets: with more ready, poll again, up to once per
        // EVENTS sockets open (each ready one is then read in this turn, whatever the number
        // of calls; one poll per tick capped the reads at EVENTS per millisecond, below what
        // the RTP port range allows). A socket already read goes to the back of the ready
        // list (level-triggered), so the others come first.
        let rounds = 1 + 2 * slots.len() / EVENTS;
        let mut left = false;
        for _ in 0..rounds {
            events.clear();
            if let Err(e) = epoll::wait(poll, spare_capacity(events), Some(&NO_WAIT)) {
                // EINTR and the like: the readiness stays, the next turn polls again.
                debug!(error = %e, "media poll failed");
                return true;
            }
            let full = events.len() >= EVENTS;
            left = full;
            for event in events.iter() {
                left |= read_socket(slots, buf, event.data.u64() as usize, share, &mut feed);
            }
            if !full {
                break;
            }
        }
        left
    }
}

/// Read one socket's `share`; returns whether it may hold more.
fn read_socket(
    slots: &mut [Option<Slot>],
    buf: &mut [u8],
    token: usize,
    share: Share,
    feed: &mut impl FnMut(Datagram<'_>),
) -> bool {
    let rtcp = token % 2 == 1;
    let Some(Some(slot)) = slots.get_mut(token / 2) else {
        return false; // closed since it was ready
    };
    let sock = if rtcp { &slot.rtcp } else { &slot.rtp };
    let n = match share {
        Share::Drain => PER_SOCKET,
        Share::One => 1,
    };
    for _ in 0..n {
        match sock.recv_from(buf) {
            Ok((len, from)) => feed(Datagram {
                leg: slot.leg,
                rtcp,
                from,
                data: &buf[..len],
            }),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            // ICMP port unreachable and the like surface here: keep reading.
            Err(e) => debug!(leg = %slot.leg, error = %e, "RTP receive error"),
        }
    }
    true
}

/// Open legs from which the sockets are read on the loop's own wake-ups (ticked), and below
/// which they go back to waking the loop when readable.
const TICKED_FROM: usize = 32;
const TICKED_BELOW: usize = 16;
/// Ticked: the shortest time between two reads (a wake-up sooner does not read): a little
/// under the alarm's spacing, so that every timed wake-up reads (at exactly the spacing,
/// microseconds of jitter decided, and reads drifted to one per [`TICK_MAX`]) ...
const TICK_MIN: Duration = Duration::from_micros(900);
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
    ticked: Option<OwnedFd>,
    last_read: tokio::time::Instant,
    /// The last read may have left datagrams in some socket: the reactor's wake-up for the
    /// poll is edge-triggered, so the loop reads again without waiting for one.
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
    pub fn poll(&self) -> Option<&OwnedFd> {
        match &self.ready {
            Some(fd) => Some(fd.get_ref()),
            None => self.ticked.as_ref(),
        }
    }

    /// How much of each ready socket a read takes: all it holds when woken by readiness (a
    /// datagram left behind would wait for the next one to arrive), one datagram per tick.
    pub fn share(&self) -> Share {
        if self.ticked.is_some() {
            Share::One
        } else {
            Share::Drain
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
                Ok(fd) => {
                    self.ready = Some(fd);
                    // The ticks took one datagram per socket: what they left is read
                    // without waiting for a new one.
                    self.left = true;
                }
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

    /// Whether the last read (by [`MediaSet::read`]) may have left datagrams for the next
    /// turn.
    pub fn set_left(&mut self, left: bool) {
        self.left = left;
    }

    /// Waking on readiness: resolves when the sockets are to be read (readable, or maybe
    /// left with datagrams by the last read, whichever branch of the loop made it); never
    /// when ticked (the ticks read them).
    pub async fn readable(&mut self) {
        match &mut self.ready {
            // Leftovers are read again at once, but only after a yield: a flood that leaves
            // datagrams every turn would otherwise keep this resolving without the task ever
            // yielding, and on the current-thread runtime the SIP reader, the signal driver
            // (the stop) and the store writes would not run for as long as it lasted.
            Some(_) if self.left => tokio::task::yield_now().await,
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
    /// turn reads the media too) is read again without a new datagram: the reactor's wake-up
    /// for the poll is edge-triggered, and no new edge comes for what is already queued.
    #[tokio::test(flavor = "current_thread")]
    async fn leftovers_of_the_channels_turn_wake_the_loop() {
        let (poll, mut set) = MediaSet::new().unwrap();
        let mut wait = MediaWait::new(poll);
        let to = open(&mut set, 1);
        flood(to, 40);
        let mut n = 0;
        let left = set.read(wait.poll().unwrap(), wait.share(), |_| n += 1);
        assert_eq!((n, left), (PER_SOCKET, true));
        wait.set_left(left); // as `Io::read_media` does after every read
        let woke = tokio::time::timeout(Duration::from_millis(200), wait.readable()).await;
        assert!(
            woke.is_ok(),
            "24 datagrams left in the socket and the loop not woken"
        );
    }

    /// A flood the loop cannot keep up with (every read leaves datagrams, so `readable()`
    /// resolves at once, turn after turn) must still let the runtime's other tasks run: on
    /// the server's current-thread runtime the SIP reader, the signal driver (SIGTERM) and the
    /// store writes only run when the loop's task yields. The feed here is slower than the
    /// flood, as the engine is when overloaded.
    #[test]
    fn a_flood_the_loop_cannot_keep_up_with_still_lets_other_tasks_run() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (poll, mut set) = MediaSet::new().unwrap();
            let mut wait = MediaWait::new(poll);
            let to = open(&mut set, 1);
            let stop = Arc::new(AtomicBool::new(false));
            let sender = {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                    while !stop.load(Ordering::Relaxed) {
                        let _ = tx.send_to(&[0x80; 12], to);
                    }
                })
            };
            // The flood has filled the socket's buffer.
            std::thread::sleep(Duration::from_millis(50));
            // The engine's work per datagram, slower than the flood.
            let slow = |_: Datagram<'_>| {
                let t = std::time::Instant::now();
                while t.elapsed() < Duration::from_micros(50) {}
            };
            let left = set.read(wait.poll().unwrap(), wait.share(), slow);
            wait.set_left(left);
            let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(async move {
                let _ = tx.send(());
            });
            let start = std::time::Instant::now();
            let (mut turns, mut ran) = (0u32, false);
            while start.elapsed() < Duration::from_secs(1) {
                tokio::select! {
                    biased;
                    _ = &mut rx => {
                        ran = true;
                        break;
                    }
                    () = wait.readable() => {
                        let left = set.read(wait.poll().unwrap(), wait.share(), slow);
                        wait.set_left(left);
                        turns += 1;
                    }
                }
            }
            stop.store(true, Ordering::Relaxed);
            sender.join().unwrap();
            assert!(
                ran,
                "another task never ran during 1 s of flood ({turns} turns in a row)"
            );
        });
    }

    /// A flooded socket gets at most its share per turn, however long the flood lasts, and
    /// what it holds beyond is reported again by the next poll (level-triggered): nothing is
    /// lost, and a quiet socket beside it is read in the same turn.
    #[tokio::test(flavor = "current_thread")]
    async fn a_flooded_socket_gets_its_share_per_turn_and_no_more() {
        let (poll, mut set) = MediaSet::new().unwrap();
        let wait = MediaWait::new(poll);
        let to = open(&mut set, 1);
        let quiet = open(&mut set, 2);
        let mut read = 0;
        for turn in 0..6 {
            flood(to, 24);
            flood(quiet, 1);
            let (mut n, mut q) = (0, 0);
            set.read(wait.poll().unwrap(), wait.share(), |d| {
                if d.leg == CallHandle(1).leg(0) {
                    n += 1
                } else {
                    q += 1
                }
            });
            assert!(
                n <= PER_SOCKET,
                "turn {turn}: {n} datagrams from one socket"
            );
            assert_eq!(q, 1, "turn {turn}: the quiet socket beside the flood");
            read += n;
        }
        // Nothing is lost: the rest comes over the next turns.
        while set.read(wait.poll().unwrap(), wait.share(), |_| read += 1) {}
        assert_eq!(read, 6 * 24);
    }

    /// Ticked, a turn takes one datagram of each ready socket (one `recvfrom` per packet, no
    /// read that only learns the socket is empty); the rest is reported by the next poll.
    #[tokio::test(flavor = "current_thread")]
    async fn ticked_reads_take_one_datagram_per_socket_and_the_rest_next_turn() {
        let (poll, mut set) = MediaSet::new().unwrap();
        let mut wait = MediaWait::new(poll);
        let mut to = Vec::new();
        for call in 0..TICKED_FROM as u64 {
            to.push(open(&mut set, call));
        }
        wait.adapt(set.legs());
        assert_eq!(wait.share(), Share::One);
        flood(to[0], 3);
        flood(to[1], 1);
        let mut turns = Vec::new();
        for _ in 0..4 {
            let mut legs = Vec::new();
            set.read(wait.poll().unwrap(), wait.share(), |d| {
                legs.push(d.leg.call.0)
            });
            legs.sort();
            turns.push(legs);
        }
        assert_eq!(turns, vec![vec![0, 1], vec![0], vec![0], vec![]]);
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
        let left = set.read(wait.poll().unwrap(), wait.share(), |_| n += 1);
        wait.set_left(left);
        assert_eq!(n, 1, "one datagram per socket per tick");
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
        let left = set.read(wait.poll().unwrap(), wait.share(), |_| n += 1);
        assert_eq!((n, left), (1 + PER_SOCKET, true));
    }

    /// A closed leg's leftover does not carry over to the leg that takes its slot.
    #[tokio::test(flavor = "current_thread")]
    async fn a_closed_legs_leftover_is_forgotten() {
        let (poll, mut set) = MediaSet::new().unwrap();
        let wait = MediaWait::new(poll);
        let to = open(&mut set, 1);
        flood(to, 20);
        assert!(set.read(wait.poll().unwrap(), wait.share(), |_| {}));
        set.close(CallHandle(1).leg(0));
        let to = open(&mut set, 2);
        flood(to, 3);
        let mut legs = Vec::new();
        let left = set.read(wait.poll().unwrap(), wait.share(), |d| legs.push(d.leg));
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
        let wait = MediaWait::new(poll);
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
            let left = set.read(wait.poll().unwrap(), wait.share(), |d| {
                sizes.push(d.data.len())
            });
            assert!(!left, "nothing left over");
        }
        assert_eq!(sizes, vec![DATAGRAM, 12]);
    }

    /// Ticked with more sockets ready than one poll returns, a turn still reads each of them
    /// (one poll per tick capped the reads at that number per millisecond).
    #[tokio::test(flavor = "current_thread")]
    async fn a_turn_reads_every_ready_socket_beyond_one_polls_worth() {
        let (poll, mut set) = MediaSet::new().unwrap();
        let mut wait = MediaWait::new(poll);
        let n = 3 * EVENTS / 2 + 7;
        let to: Vec<_> = (0..n as u64).map(|call| open(&mut set, call)).collect();
        wait.adapt(set.legs());
        assert_eq!(wait.share(), Share::One);
        for &t in &to {
            flood(t, 1);
        }
        let mut got = 0;
        let left = set.read(wait.poll().unwrap(), wait.share(), |_| got += 1);
        assert_eq!(got, n);
        assert!(left, "one datagram per socket read: some may hold more");
        let mut more = 0;
        set.read(wait.poll().unwrap(), wait.share(), |_| more += 1);
        assert_eq!(more, 0);
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
