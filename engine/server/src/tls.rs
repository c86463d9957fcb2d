//! TLS (rustls) for SIP (RFC 3261 §26.2: `sips:` and `transport=tls`, RFC 5630) and for the
//! HTTP side (staff page, API, metrics), with one certificate and key from PEM files.
//!
//! The files are looked at again on every new connection (two `stat`s): when either has
//! changed, both are read and the pair is used for that connection and the next ones, if
//! the key matches the certificate; otherwise the previous pair stays and a warning is
//! logged. Connections already open keep the certificate they were made with. Replacing
//! the files (write new ones, rename them over the old) is all a renewal needs.
//!
//! Key material is never logged: messages name the files, never their contents.
//!
//! Handshakes are rate-limited ([`HANDSHAKES`]): the server runs on one thread, and each
//! handshake's key exchange and signature run on it too, so a flood of handshakes (each
//! within the connection caps, closed at once and redone) delayed every call's RTP — measured
//! with a debug build: pacing lateness p50 1 ms -> 7-9 ms, p99 1.5 ms -> 20-48 ms under
//! ~1,000 handshakes/s from one host. A connection over the budget is closed before its
//! handshake starts (no crypto spent); SIP over TLS and HTTPS share the budget.

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

/// TLS handshakes one client address may start per second (and in a burst).
pub const HANDSHAKES_PER_ADDRESS: f64 = 20.0;
/// TLS handshakes all clients together may start per second (and in a burst).
pub const HANDSHAKES_TOTAL: f64 = 200.0;
/// Addresses whose budget is remembered; past this, idle ones are forgotten first.
const GATE_ADDRESSES: usize = 4096;

/// The process-wide handshake budget of SIP over TLS and HTTPS.
pub static HANDSHAKES: HandshakeGate = HandshakeGate {
    state: Mutex::new(None),
};

/// Token buckets limiting how many TLS handshakes start: per client address and in all.
#[derive(Debug)]
pub struct HandshakeGate {
    state: Mutex<Option<GateState>>,
}

#[derive(Debug)]
struct GateState {
    total: Bucket,
    per_address: HashMap<IpAddr, Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(now: Instant, size: f64) -> Bucket {
        Bucket {
            tokens: size,
            at: now,
        }
    }

    /// Refill at `size` per second up to `size`; the tokens now.
    fn refill(&mut self, now: Instant, size: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * size).min(size);
        self.at = now;
        self.tokens
    }
}

impl HandshakeGate {
    /// Whether a handshake from `ip` may start now (and if so, it is counted).
    pub fn admit(&self, ip: IpAddr) -> bool {
        self.admit_at(ip, Instant::now())
    }

    fn admit_at(&self, ip: IpAddr, now: Instant) -> bool {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = guard.get_or_insert_with(|| GateState {
            total: Bucket::full(now, HANDSHAKES_TOTAL),
            per_address: HashMap::new(),
        });
        if !state.per_address.contains_key(&ip) && state.per_address.len() >= GATE_ADDRESSES {
            // Forget the addresses whose budget is whole again (they would start full).
            state
                .per_address
                .retain(|_, b| b.refill(now, HANDSHAKES_PER_ADDRESS) < HANDSHAKES_PER_ADDRESS);
        }
        let total = state.total.refill(now, HANDSHAKES_TOTAL);
        let mine = match state.per_address.get_mut(&ip) {
            Some(b) => b.refill(now, HANDSHAKES_PER_ADDRESS),
            None => HANDSHAKES_PER_ADDRESS,
        };
        if total < 1.0 || mine < 1.0 {
            return false;
        }
        state.total.tokens -= 1.0;
        if state.per_address.len() < GATE_ADDRESSES || state.per_address.contains_key(&ip) {
            let b = state
                .per_address
                .entry(ip)
                .or_insert_with(|| Bucket::full(now, HANDSHAKES_PER_ADDRESS));
            b.tokens -= 1.0;
        }
        true
    }
}

/// `ivr serve` options for TLS.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// The certificate chain (PEM) for SIP over TLS and HTTPS; reloaded when the file
    /// changes. With --tls-key, SIP over TLS listens (see --sip-tls-listen).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM, PKCS#8, PKCS#1 or SEC1) for --tls-cert; reloaded with it.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// SIP over TLS address (default: the --listen address with port 5061 when that is
    /// 5060, else its port + 1; with port 0, a free port).
    #[arg(long, requires = "tls_cert")]
    pub sip_tls_listen: Option<std::net::SocketAddr>,
    /// Serve the staff page, API, metrics and admin endpoints over HTTPS (needs --tls-cert);
    /// the session cookie is then always `Secure` (unless --secure-cookies never).
    #[arg(long, requires = "tls_cert")]
    pub https: bool,
}

impl TlsArgs {
    /// The SIP-over-TLS address for a SIP `listen` address.
    pub fn sip_address(&self, listen: std::net::SocketAddr) -> std::net::SocketAddr {
        self.sip_tls_listen.unwrap_or_else(|| {
            let port = match listen.port() {
                0 => 0,
                p => p.saturating_add(1),
            };
            std::net::SocketAddr::new(listen.ip(), port)
        })
    }
}

/// Why a certificate and key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No PEM certificate in the file.
    #[error("{0}: no PEM certificate found")]
    NoCertificate(PathBuf),
    /// A PEM section in the certificate file is cut off or corrupt.
    #[error("{0}: a PEM section is cut off or corrupt")]
    BadPem(PathBuf),
    /// No usable PEM private key in the file.
    #[error("{0}: no usable PEM private key found")]
    NoKey(PathBuf),
    /// The key is not one rustls can sign with.
    #[error("{path}: unsupported private key ({source})")]
    UnsupportedKey {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: rustls::Error,
    },
    /// The key does not belong to the certificate.
    #[error("{key} does not match the certificate in {cert}")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
}

/// What identifies a version of a file without reading it.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

/// The certificate and key in use, reloaded from their files when they change.
#[derive(Debug)]
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: Mutex<Current>,
}

#[derive(Debug)]
struct Current {
    key: Arc<CertifiedKey>,
    stamps: (Stamp, Stamp),
}

impl CertStore {
    /// Load the pair; an error if it is unusable now (the server does not start).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<CertStore>, TlsError> {
        let stamps = (stamp(cert_path), stamp(key_path));
        let key = load_pair(cert_path, key_path)?;
        Ok(Arc::new(CertStore {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            current: Mutex::new(Current {
                key: Arc::new(key),
                stamps,
            }),
        }))
    }

    /// The pair to use now, reloaded first if either file changed.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let stamps = (stamp(&self.cert_path), stamp(&self.key_path));
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if stamps != cur.stamps {
            // Remembered either way: a bad pair is reported once, not on every connection.
            cur.stamps = stamps;
            match load_pair(&self.cert_path, &self.key_path) {
                Ok(k) => {
                    tracing::info!(cert = %self.cert_path.display(), "TLS certificate reloaded");
                    cur.key = Arc::new(k);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "TLS certificate not reloaded; the previous one stays in use")
                }
            }
        }
        cur.key.clone()
    }

    /// A rustls server configuration using this store, offering `alpn` protocols.
    pub fn server_config(self: &Arc<Self>, alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            // The ring provider supports the default versions.
            .expect("ring supports TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(self.clone())));
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// An acceptor for new connections.
    pub fn acceptor(self: &Arc<Self>, alpn: &[&[u8]]) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server_config(alpn))
    }
}

#[derive(Debug)]
struct Resolver(Arc<CertStore>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current())
    }
}

fn load_pair(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| TlsError::Read {
            path: p.to_path_buf(),
            source,
        })
    };
    let cert_pem = read(cert_path)?;
    let key_pem = read(key_path)?;
    // Every section must parse: a chain file cut off in its intermediate (disk full, a
    // writer stopped mid-write) still holds a leaf that matches the key, but served alone
    // it fails every client that needs the intermediate.
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::BadPem(cert_path.to_path_buf()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(cert_path.to_path_buf()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| TlsError::NoKey(key_path.to_path_buf()))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|source| TlsError::UnsupportedKey {
            path: key_path.to_path_buf(),
            source,
        })?;
    let pair = CertifiedKey::new(certs, signing);
    pair.keys_match().map_err(|_| TlsError::Mismatch {
        cert: cert_path.to_path_buf(),
        key: key_path.to_path_buf(),
    })?;
    Ok(pair)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_sip_tls_port() {
        let a = TlsArgs::default();
        assert_eq!(
            a.sip_address("127.0.0.1:5060".parse().unwrap()),
            "127.0.0.1:5061".parse().unwrap()
        );
        assert_eq!(a.sip_address("127.0.0.1:0".parse().unwrap()).port(), 0);
    }

    #[test]
    fn missing_or_garbage_files_are_reported_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        let e = CertStore::load(&c, &k).unwrap_err();
        assert!(e.to_string().contains("c.pem"), "{e}");
        std::fs::write(&c, "not pem").unwrap();
        std::fs::write(
            &k,
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let e = CertStore::load(&c, &k).unwrap_err();
        assert!(matches!(e, TlsError::NoCertificate(_)), "{e}");
        assert!(
            !e.to_string().contains("c2VjcmV0"),
            "no key material in errors"
        );
    }

    #[test]
    fn the_handshake_gate_limits_each_address_and_the_total() {
        let gate = HandshakeGate {
            state: Mutex::new(None),
        };
        let t0 = Instant::now();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let burst = HANDSHAKES_PER_ADDRESS as usize;
        let admitted = (0..burst * 3).filter(|_| gate.admit_at(a, t0)).count();
        assert_eq!(admitted, burst, "one address: its burst, then nothing");
        // Refilled with time: a second later, a whole burst again.
        let t1 = t0 + std::time::Duration::from_secs(1);
        assert!(gate.admit_at(a, t1));
        // Other addresses have their own budget, up to the total.
        let total = (0..2_000u32)
            .filter(|i| gate.admit_at(IpAddr::from((0x0A00_0000 + i).to_be_bytes()), t1))
            .count();
        assert_eq!(total, HANDSHAKES_TOTAL as usize - 1);
        // Many addresses: the table stays bounded.
        let t2 = t1 + std::time::Duration::from_secs(5);
        for i in 0..(GATE_ADDRESSES as u32 * 3) {
            let t = t2 + std::time::Duration::from_millis(u64::from(i));
            gate.admit_at(IpAddr::from((0x0B00_0000 + i).to_be_bytes()), t);
        }
        let len = gate
            .state
            .lock()
            .unwrap()
            .as_ref()
            .unwrap()
            .per_address
            .len();
        assert!(len <= GATE_ADDRESSES, "{len}");
    }
}
