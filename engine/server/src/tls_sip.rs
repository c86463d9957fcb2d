//! SIP over TLS (RFC 3261 §26.2, RFC 5630 `transport=tls`): accept, handshake, then serve
//! the connection as SIP over TCP is served (framing, timeouts, caps: one connection table
//! for both).
//!
//! The handshake must finish within the SIP message timeout (`--sip-tcp-message-timeout`):
//! a client that stalls mid-handshake is closed like one that stalls mid-message. A failed
//! handshake (plaintext, an untrusted certificate on the client's side, oversized records)
//! closes that connection only and is logged at debug level. Connections over the handshake
//! budget ([`crate::tls::HANDSHAKES`]) are closed before their handshake.

use crate::conns::SipTcpLimits;
use crate::driver::{SipIn, run_tcp};
use ivr_sip::Transport;
use std::time::Duration;
use tokio::net::TcpListener;
use tracing::{debug, warn};

/// Accept SIP-over-TLS connections on `listener` until the process ends.
pub(crate) fn spawn_acceptor(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    tx: SipIn,
    limits: SipTcpLimits,
) {
    tokio::spawn(async move {
        let mut warned = false;
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    if crate::conns::out_of_descriptors(&e) {
                        warn!(error = %e, "TLS accept failed: out of file descriptors");
                    } else {
                        warn!(error = %e, "TLS accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // The handshake budget first: over it, closed before any crypto is spent.
            if !crate::tls::HANDSHAKES.admit(peer.ip()) {
                debug!(%peer, "SIP TLS connection closed: over the handshake budget");
                continue;
            }
            let Some(admitted) = limits.table.admit(peer.ip()) else {
                if !warned {
                    warn!(%peer, open = limits.table.open(), "SIP TLS connection refused: at the connection cap");
                    warned = true;
                }
                continue;
            };
            warned = false;
            let _ = stream.set_nodelay(true);
            let (acceptor, tx, limits) = (acceptor.clone(), tx.clone(), limits.clone());
            tokio::spawn(async move {
                let handshake = tokio::select! {
                    r = tokio::time::timeout(limits.message_timeout, acceptor.accept(stream)) => r,
                    _ = admitted.evict.notified() => {
                        debug!(%peer, "closing a TLS handshake to make room for another connection");
                        return;
                    }
                };
                match handshake {
                    Ok(Ok(tls)) => {
                        let _ = run_tcp(tls, peer, tx, Some((admitted, &limits)), Transport::Tls);
                    }
                    Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => {
                        debug!(%peer, "closing TLS connection: handshake not complete in time")
                    }
                }
            });
        }
    });
}
