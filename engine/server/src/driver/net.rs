//! The driver's sockets: the readers of the SIP and media sockets, the TCP acceptor and
//! each TCP connection's framing loop, and the signal that asks for a reload. They only
//! move bytes between the network and the driver's channel; the engine decides.

use super::*;

/// SIGHUP asks for a reload.
pub(super) fn spawn_sighup(mut hup: tokio::signal::unix::Signal, tx: mpsc::Sender<NetIn>) {
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            if tx
                .send(NetIn::ReloadRequested {
                    why: "SIGHUP",
                    reply: None,
                })
                .await
                .is_err()
            {
                return;
            }
        }
    });
}

/// A TCP listener with a deep accept queue: a burst of connections (a flood, or many
/// phones at once) waits in the kernel instead of having its SYNs dropped and retried a
/// second later. The kernel caps the depth at `net.core.somaxconn`.
pub(super) fn listen_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(4096)?;
    TcpListener::from_std(sock.into())
}

pub(super) fn set_buffers(udp: &UdpSocket) {
    let sock = socket2::SockRef::from(udp);
    let _ = sock.set_recv_buffer_size(4 << 20);
    let _ = sock.set_send_buffer_size(4 << 20);
}

/// The secret seed of the engine's SRTP keys, from the operating system.
pub(super) fn srtp_seed() -> ivr_engine::srtp::KeySeed {
    use rand_core::RngCore;
    let mut seed = ivr_engine::srtp::KeySeed::default();
    rand_core::OsRng.fill_bytes(&mut seed.0);
    seed
}

pub(super) fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (t.as_nanos() as u64) ^ ((std::process::id() as u64) << 32)
}

pub(super) fn spawn_udp_reader(udp: Arc<UdpSocket>, tx: route::SipIn) {
    tokio::spawn(async move {
        let mut buf = BytesMut::with_capacity(1 << 16);
        loop {
            buf.reserve(65_536);
            match udp.recv_buf_from(&mut buf).await {
                Ok((_, from)) => {
                    let data = buf.split().freeze();
                    if tx.sip(Transport::Udp, from, data).await.is_err() {
                        return;
                    }
                }
                // ICMP port unreachable and the like surface here on some systems: keep reading.
                Err(e) => debug!(error = %e, "UDP receive error"),
            }
        }
    });
}

pub(super) fn spawn_tcp_acceptor(
    listener: TcpListener,
    tx: route::SipIn,
    limits: crate::conns::SipTcpLimits,
) {
    tokio::spawn(async move {
        let mut warned = false;
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => match limits.table.admit(peer.ip()) {
                    Some(admitted) => {
                        warned = false;
                        let _ = stream.set_nodelay(true);
                        let _ = run_tcp(
                            stream,
                            peer,
                            tx.clone(),
                            Some((admitted, &limits)),
                            Transport::Tcp,
                        );
                    }
                    None => {
                        // Dropped: closed at once. Logged once per run of refusals.
                        if !warned {
                            warn!(%peer, open = limits.table.open(), "SIP TCP connection refused: at the connection cap");
                            warned = true;
                        }
                    }
                },
                Err(e) => {
                    if crate::conns::out_of_descriptors(&e) {
                        warn!(error = %e, "TCP accept failed: out of file descriptors");
                    } else {
                        warn!(error = %e, "TCP accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
}

/// Serve one TCP connection: frame what arrives (RFC 3261 §18.3), write what the engine sends.
/// Returns the sender for outgoing messages. An accepted connection comes with its place
/// in the connection table and the timeouts: a message must be whole within the message
/// timeout of the read that started it (the first one within that time of connecting), and
/// the connection closes after the idle timeout without a byte, or when the table closes it
/// to make room.
pub(crate) fn run_tcp<S>(
    stream: S,
    peer: SocketAddr,
    tx: route::SipIn,
    accepted: Option<(crate::conns::Admitted, &crate::conns::SipTcpLimits)>,
    transport: Transport,
) -> mpsc::Sender<Vec<u8>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(256);
    let reg = out_tx.clone();
    let pong = out_tx.clone();
    let tx2 = tx.clone();
    let (admitted, message_timeout, idle_timeout) = match accepted {
        Some((a, l)) => (Some(a), l.message_timeout, l.idle_timeout),
        // A connection we opened (RFC 3261 §18.2.2) is not capped; it still goes idle.
        None => (
            None,
            Duration::MAX,
            Duration::from_secs(crate::conns::ConnArgs::default().sip_tcp_idle_timeout),
        ),
    };
    tokio::spawn(async move {
        // The engine hears of the connection with its first message (or at once for one
        // we opened): silent connections, however many, never reach the engine loop.
        let mut reg = Some(reg);
        if admitted.is_none()
            && let Some(r) = reg.take()
            && tx2.opened(peer, r).await.is_err()
        {
            return;
        }
        let mut framer = StreamFramer::new();
        let mut buf = vec![0u8; 16_384];
        let start = tokio::time::Instant::now();
        // When the message being read must be whole; None between messages.
        let mut message_due = start.checked_add(message_timeout);
        let mut idle_due = start + idle_timeout;
        let evicted = async {
            match &admitted {
                Some(a) => a.evict.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(evicted);
        'conn: loop {
            let due = message_due.map_or(idle_due, |m| m.min(idle_due));
            let n = tokio::select! {
                r = rd.read(&mut buf) => match r {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                },
                _ = tokio::time::sleep_until(due) => {
                    debug!(%peer, "closing TCP connection: {}", if message_due.is_some_and(|m| m <= due) { "message not complete in time" } else { "idle" });
                    break;
                }
                _ = &mut evicted => {
                    debug!(%peer, "closing a silent TCP connection to make room for another");
                    break;
                }
            };
            let now = tokio::time::Instant::now();
            idle_due = now + idle_timeout;
            framer.push(&buf[..n]);
            let mut framed = false;
            loop {
                match framer.next_frame() {
                    Ok(None) => break,
                    Ok(Some(Frame::Ping)) => {
                        framed = true;
                        // RFC 5626 §4.4.1: answer a double-CRLF ping with a single CRLF.
                        let _ = pong.send(b"\r\n".to_vec()).await;
                    }
                    Ok(Some(Frame::Message(m))) => {
                        framed = true;
                        if let Some(a) = &admitted {
                            a.spoke();
                        }
                        if let Some(r) = reg.take()
                            && tx2.opened(peer, r).await.is_err()
                        {
                            break 'conn;
                        }
                        let data = Bytes::from(m);
                        if tx2.sip(transport, peer, data).await.is_err() {
                            break 'conn;
                        }
                    }
                    Err(e) => {
                        warn!(%peer, error = %e, "closing TCP connection: cannot frame the stream");
                        break 'conn;
                    }
                }
            }
            // A read that completed nothing starts (or continues) the message clock.
            if framed {
                message_due = None;
            } else if message_due.is_none() {
                message_due = now.checked_add(message_timeout);
            }
        }
        if reg.is_none() {
            tx2.closed(peer).await;
        }
    });
    tokio::spawn(async move {
        while let Some(msg) = out_rx.recv().await {
            if wr.write_all(&msg).await.is_err() {
                break;
            }
        }
    });
    out_tx
}
