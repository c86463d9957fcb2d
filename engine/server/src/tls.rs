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

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

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
}
