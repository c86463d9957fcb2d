//! TLS and SRTP from outside (issue 8): baresip calls over SIP-over-TLS with SRTP (SDES) and
//! hears the greeting; a plain RTP/AVP offer on a TLS call gets plain RTP (the documented
//! rule); a TLS client of our own fails handshakes in every way a stranger would and the
//! engine keeps serving; the staff site over HTTPS sets a `Secure` cookie; a replaced
//! certificate is used by the next connection.

use ivr_audio::{Codec, Prompt};
use ivr_tests::process::Ivr;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A CA and a server certificate it signed for `localhost` and 127.0.0.1, as PEM files.
struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        Pki {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Write the certificate and key as `cert.pem` and `key.pem` in `dir` (replacing any
    /// there by rename, as a renewal would), and the CA as `ca.pem`.
    fn install(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        for (path, text) in [(&cert, &self.cert_pem), (&key, &self.key_pem)] {
            let tmp = path.with_extension("new");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, path).unwrap();
        }
        std::fs::write(dir.join("ca.pem"), &self.ca_pem).unwrap();
        (cert, key)
    }
}

fn start(dir: &Path, pki: &Pki, extra: &[&str]) -> Ivr {
    let (cert, key) = pki.install(dir);
    let mut args = vec![
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let ivr = Ivr::start(&args);
    assert!(ivr.tls.is_some(), "the listen line names the TLS address");
    ivr
}

fn client(trust: Option<&CertificateDer<'static>>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = trust {
        roots.add(ca.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Connect and finish the handshake, or the error that ended it.
fn connect(
    addr: SocketAddr,
    name: &str,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<Tls> {
    let mut sock = TcpStream::connect(addr)?;
    sock.set_read_timeout(Some(Duration::from_secs(20)))?;
    let name = ServerName::try_from(name.to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)?;
    }
    Ok(rustls::StreamOwned::new(conn, sock))
}

fn options(n: u32, transport: &str) -> String {
    format!(
        "OPTIONS sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport} 127.0.0.1:9;rport;branch=z9hG4bK-tls-{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p{n}\r\nTo: <sip:ivr@127.0.0.1>\r\n\
         Call-ID: tls-probe-{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

/// An OPTIONS over the connection; the status line of its answer.
fn ask(s: &mut impl ReadWrite, n: u32) -> String {
    s.write_all(options(n, "TLS").as_bytes()).unwrap();
    s.flush().unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let k = s.read(&mut buf).expect("an answer over TLS");
        assert!(k > 0, "closed before answering");
        got.extend_from_slice(&buf[..k]);
    }
    String::from_utf8_lossy(&got)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Read until the peer closes; what it sent. Panics if it is still open after `limit`.
fn until_closed(s: &mut TcpStream, limit: Duration) -> Vec<u8> {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("still open after {limit:?}: {e}"),
        }
    }
}

fn udp_options_answered(sip: SocketAddr) -> bool {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    udp.send_to(options(99, "UDP").as_bytes(), sip).unwrap();
    let mut buf = [0u8; 4096];
    matches!(udp.recv_from(&mut buf), Ok((n, _)) if buf[..n].starts_with(b"SIP/2.0 200"))
}

#[test]
fn handshake_failures_close_only_their_connection() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let ivr = start(dir.path(), &pki, &["--sip-tcp-message-timeout", "2"]);
    let tls = ivr.tls.unwrap();

    // A client that does not trust our certificate, and one that asked for another name.
    let e = connect(tls, "localhost", client(None)).expect_err("untrusted");
    assert!(e.to_string().contains("invalid peer certificate"), "{e}");
    let e = connect(tls, "wrong.example", client(Some(&pki.ca_der))).expect_err("wrong name");
    assert!(e.to_string().contains("not valid for name"), "{e}");

    // Plain SIP to the TLS port: closed, nothing answered in clear.
    let mut plain = TcpStream::connect(tls).unwrap();
    plain.write_all(options(1, "TCP").as_bytes()).unwrap();
    let got = until_closed(&mut plain, Duration::from_secs(15));
    assert!(
        !String::from_utf8_lossy(&got).contains("SIP/2.0"),
        "{got:?}"
    );

    // A record header announcing more than TLS allows (2^14 + 2048, RFC 8446 §5.2).
    let mut big = TcpStream::connect(tls).unwrap();
    big.write_all(&[0x16, 0x03, 0x03, 0x48, 0x01]).unwrap();
    big.write_all(&[0u8; 64]).unwrap();
    until_closed(&mut big, Duration::from_secs(15));

    // A client that stops in the middle of its ClientHello: closed by the message timeout.
    let mut stalled = TcpStream::connect(tls).unwrap();
    stalled
        .write_all(&[
            0x16, 0x03, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, 0xFC, 0x03, 0x03,
        ])
        .unwrap();
    let t0 = Instant::now();
    until_closed(&mut stalled, Duration::from_secs(30));
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "closed by the timeout, not at once"
    );

    // The engine kept serving: over TLS, and over UDP.
    let mut good = connect(tls, "localhost", client(Some(&pki.ca_der))).expect("handshake");
    assert_eq!(ask(&mut good, 2), "SIP/2.0 200 OK");
    let mut by_ip = connect(tls, "127.0.0.1", client(Some(&pki.ca_der))).expect("by address");
    assert_eq!(ask(&mut by_ip, 3), "SIP/2.0 200 OK");
    assert!(udp_options_answered(ivr.sip));
    // Nothing of the key in the log.
    let secret_line = pki.key_pem.lines().nth(1).unwrap();
    assert!(!ivr.log().contains(secret_line));
}

#[test]
fn a_replaced_certificate_serves_the_next_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (Pki::new(), Pki::new());
    let ivr = start(dir.path(), &first, &[]);
    let tls = ivr.tls.unwrap();
    let mut old = connect(tls, "localhost", client(Some(&first.ca_der))).expect("first cert");
    assert_eq!(ask(&mut old, 1), "SIP/2.0 200 OK");

    second.install(dir.path());
    let mut new = connect(tls, "localhost", client(Some(&second.ca_der))).expect("second cert");
    assert_eq!(ask(&mut new, 2), "SIP/2.0 200 OK");
    let e = connect(tls, "localhost", client(Some(&first.ca_der)))
        .expect_err("the first certificate is no longer served");
    assert!(e.to_string().contains("invalid peer certificate"), "{e}");
    // The connection made before the change goes on.
    assert_eq!(ask(&mut old, 3), "SIP/2.0 200 OK");
    ivr.wait_for(&["TLS certificate reloaded"], 1, Duration::from_secs(5));

    // A key that does not match its certificate is refused; the second pair stays.
    std::fs::write(dir.path().join("key.pem"), &first.key_pem).unwrap();
    let mut still = connect(tls, "localhost", client(Some(&second.ca_der))).expect("kept");
    assert_eq!(ask(&mut still, 4), "SIP/2.0 200 OK");
    ivr.wait_for(&["TLS certificate not reloaded"], 1, Duration::from_secs(5));
}

/// A CA, an intermediate it signed and a server certificate the intermediate signed: the
/// server must send leaf + intermediate for a client trusting only the CA.
fn chained_pki() -> (CertificateDer<'static>, String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_pair = |name: &str| {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(rcgen::DnType::CommonName, name.to_string());
        (p, KeyPair::generate().unwrap())
    };
    let (root_params, root_key) = ca_pair("review root");
    let root = root_params.self_signed(&root_key).unwrap();
    let (mid_params, mid_key) = ca_pair("review intermediate");
    let mid = mid_params.signed_by(&mid_key, &root, &root_key).unwrap();
    let params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = params.signed_by(&key, &mid, &mid_key).unwrap();
    (
        root.der().clone(),
        leaf.pem(),
        mid.pem(),
        key.serialize_pem(),
    )
}

/// A renewal that ends with a truncated chain file (disk full, a writer killed mid-write):
/// the leaf parses, the intermediate is cut off. The broken file must not replace the good
/// pair — a chain without its intermediate fails every client — and the log says why.
#[test]
fn a_truncated_chain_file_does_not_replace_the_good_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let ivr = start(dir.path(), &pki, &[]);
    let tls = ivr.tls.unwrap();
    let mut first = connect(tls, "localhost", client(Some(&pki.ca_der))).expect("first cert");
    assert_eq!(ask(&mut first, 1), "SIP/2.0 200 OK");

    let (root, leaf, mid, key) = chained_pki();
    let cut = &mid[..mid.len() / 2];
    std::fs::write(dir.path().join("key.pem"), &key).unwrap();
    std::fs::write(dir.path().join("cert.pem"), format!("{leaf}{cut}")).unwrap();
    let mut kept = connect(tls, "localhost", client(Some(&pki.ca_der))).expect("old pair kept");
    assert_eq!(ask(&mut kept, 2), "SIP/2.0 200 OK");
    ivr.wait_for(&["TLS certificate not reloaded"], 1, Duration::from_secs(5));

    // Once the file is whole, the new chain is served and verifies from the root.
    std::fs::write(dir.path().join("cert.pem"), format!("{leaf}{mid}")).unwrap();
    let mut new = connect(tls, "localhost", client(Some(&root))).expect("whole chain");
    assert_eq!(ask(&mut new, 3), "SIP/2.0 200 OK");
}

/// A handshake flood from one address (each handshake costs the server a key exchange and
/// a signature on its one thread, which also paces every call's RTP): past the per-address
/// budget (`ivr_server::tls::HANDSHAKES_PER_ADDRESS` a second) connections are closed before
/// any handshake work; the budget comes back with time, and UDP is answered throughout.
#[test]
fn a_handshake_flood_is_cut_to_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let ivr = start(dir.path(), &pki, &[]);
    let tls = ivr.tls.unwrap();
    // One ClientHello, sent by 150 connections at once: each would make the server do the
    // expensive half of a handshake, for almost nothing on our side.
    let mut hello = Vec::new();
    let name = ServerName::try_from("localhost".to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(client(Some(&pki.ca_der)), name).unwrap();
    conn.write_tls(&mut hello).unwrap();
    let t0 = Instant::now();
    let mut socks: Vec<TcpStream> = (0..150)
        .map(|_| {
            let mut s = TcpStream::connect(tls).unwrap();
            s.write_all(&hello).unwrap();
            s
        })
        .collect();
    let mut answered = 0;
    for s in &mut socks {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut first = [0u8; 1];
        // A ServerHello record, or closed (EOF or reset) without one.
        if matches!(s.read(&mut first), Ok(1) if first[0] == 0x16) {
            answered += 1;
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let budget = 20.0 * (1.0 + elapsed);
    assert!(
        answered >= 1 && (answered as f64) <= budget + 1.0,
        "{answered} of 150 handshakes served in {elapsed:.2} s (budget {budget:.0})"
    );
    assert!(udp_options_answered(ivr.sip));
    // The budget refills: a real client gets through once it has.
    std::thread::sleep(Duration::from_millis(1100));
    let mut good = connect(tls, "localhost", client(Some(&pki.ca_der))).expect("handshake");
    assert_eq!(ask(&mut good, 1), "SIP/2.0 200 OK");
}

#[test]
fn the_staff_site_over_https_sets_a_secure_cookie() {
    const PASSWORD: &str = "a long staff password";
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let add = [
        "staff",
        "--users",
        "staff.yaml",
        "add-user",
        "alice",
        "--mailbox",
        "messages",
    ];
    let (code, _, err) = ivr_tests::process::run(data.path(), &add, &format!("{PASSWORD}\n"));
    assert_eq!(code, 0, "{err}");
    let pki = Pki::new();
    let (cert, key) = pki.install(dir.path());
    let ivr = Ivr::start_in(
        data.path(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--https",
            "--http-header-timeout",
            "2",
        ],
    );
    let http = ivr.http.unwrap();
    let request = |head: &str, body: &str| {
        let mut s = connect(http, "localhost", client(Some(&pki.ca_der))).expect("HTTPS");
        s.write_all(
            format!(
                "{head}\r\nHost: {http}\r\nConnection: close\r\nContent-Length: {}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
        let mut raw = Vec::new();
        // The server closes after answering (Connection: close); rustls reports a close
        // without close_notify as an error after the data, which is all we need.
        let _ = s.read_to_end(&mut raw);
        String::from_utf8_lossy(&raw).into_owned()
    };
    let page = request("GET /staff HTTP/1.1", "");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let api = request("GET /api/callbacks HTTP/1.1", "");
    assert!(api.starts_with("HTTP/1.1 401"), "{api}");
    let login = request(
        "POST /staff/login HTTP/1.1",
        &format!("user=alice&password={}", PASSWORD.replace(' ', "+")),
    );
    let cookie = login
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {login}"));
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");

    // A client that stops in the middle of its ClientHello: closed by the header timeout.
    let mut stalled = TcpStream::connect(http).unwrap();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x01, 0x00, 0x01])
        .unwrap();
    until_closed(&mut stalled, Duration::from_secs(30));

    // Plain HTTP to the HTTPS port gets no page.
    let mut plain = TcpStream::connect(http).unwrap();
    plain
        .write_all(format!("GET /staff HTTP/1.1\r\nHost: {http}\r\n\r\n").as_bytes())
        .unwrap();
    let got = until_closed(&mut plain, Duration::from_secs(20));
    assert!(!String::from_utf8_lossy(&got).contains("HTTP/1.1 200"));
}

/// The greeting of the embedded demo as a PCMU receiver decodes it.
fn greeting() -> Vec<i16> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo/prompts");
    let mut samples = Vec::new();
    for f in ["lang_fr.wav", "lang_en.wav"] {
        let bytes = std::fs::read(dir.join(f)).expect("demo prompt");
        let p = Prompt::from_wav(f, &bytes).expect("prompt loads");
        samples.extend(
            p.encoded(Codec::Pcmu)
                .iter()
                .map(|&c| Codec::Pcmu.decode(c)),
        );
    }
    samples
}

/// What a baresip call over TLS left behind.
struct Baresip {
    /// baresip's own output.
    log: String,
    /// The audio it received, decoded (its `sndfile` module's `-dec.wav`).
    heard: Vec<i16>,
}

/// Call the engine with baresip over TLS (`mediaenc` as the account's media encryption,
/// or none), trusting `ca`, for `seconds`; then read what it recorded.
fn baresip_call(tls: SocketAddr, ca: &Path, mediaenc: Option<&str>, seconds: u32) -> Baresip {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    std::fs::create_dir_all(&rec).unwrap();
    // What baresip sends: silence (aufile wants 16-bit PCM).
    let source = dir.path().join("silence.wav");
    std::fs::write(
        &source,
        ivr_audio::wav::encode_pcm16(8000, &vec![0; 8000 * 30]),
    )
    .unwrap();
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:0\nsip_cafile {}\nnet_interface 127.0.0.1\n\
         audio_player aubridge,nil\naudio_alert aubridge,nil\naudio_source aufile,{}\n\
         module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\n\
         module aubridge.so\nmodule sndfile.so\nmodule srtp.so\nmodule_app account.so\n\
         module_app menu.so\nsnd_path {}\n",
        ca.display(),
        source.display(),
        rec.display()
    );
    std::fs::write(dir.path().join("config"), config).unwrap();
    let enc = mediaenc
        .map(|m| format!(";mediaenc={m}"))
        .unwrap_or_default();
    std::fs::write(
        dir.path().join("accounts"),
        format!("<sip:tester@127.0.0.1;transport=tls>;regint=0;audio_codecs=PCMU{enc}\n"),
    )
    .unwrap();
    let out = Command::new("baresip")
        .arg("-f")
        .arg(dir.path())
        .args([
            "-e",
            &format!("/dial sip:100@{tls}"),
            "-t",
            &seconds.to_string(),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("baresip is installed (scripts/test.sh installs it)");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let dec = std::fs::read_dir(&rec)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .unwrap_or_else(|| panic!("baresip recorded nothing; its log:\n{log}"));
    let heard = ivr_audio::wav::decode(&std::fs::read(dec).unwrap())
        .expect("baresip's recording")
        .samples;
    Baresip { log, heard }
}

/// How many 20 ms frames of the greeting's speech (frames that are not near-silent) were
/// heard sample for sample, of those the heard span could hold. baresip writes what it
/// decodes 20 ms at a time, so heard frames start at multiples of 160 samples; its jitter
/// buffer may drop or repeat a frame, so each frame is looked up on its own.
fn greeting_frames_heard(heard: &[i16]) -> (usize, usize) {
    let expected = greeting();
    let speech = |f: &[i16]| f.iter().map(|&s| i64::from(s).abs()).sum::<i64>() > 160 * 200;
    // baresip's µ-law table (libre) decodes the two zero codes to ±2 where ours gives 0;
    // every other code decodes the same (the nearest other values are ±8).
    let heard: Vec<i16> = heard
        .iter()
        .map(|&s| if s.abs() <= 2 { 0 } else { s })
        .collect();
    let frames: std::collections::HashSet<&[i16]> = heard.chunks_exact(160).collect();
    let span = (heard.len() / 160).min(expected.len() / 160);
    let mut total = 0;
    let mut matched = 0;
    // The greeting starts as the call is answered; the first half second may be lost to
    // call set-up, the last to hang-up.
    for f in expected
        .chunks_exact(160)
        .take(span.saturating_sub(25))
        .skip(25)
    {
        if speech(f) {
            total += 1;
            matched += usize::from(frames.contains(f));
        }
    }
    (matched, total)
}

#[test]
fn baresip_over_tls_with_srtp_hears_the_greeting() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let ivr = start(dir.path(), &pki, &[]);
    let call = baresip_call(
        ivr.tls.unwrap(),
        &dir.path().join("ca.pem"),
        Some("srtp-mand"),
        7,
    );
    assert!(
        call.log
            .contains("SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)"),
        "{}",
        call.log
    );
    assert!(call.log.contains("Call established"), "{}", call.log);
    let (matched, total) = greeting_frames_heard(&call.heard);
    // At least 2 s of the greeting's speech, 90% of it sample for sample.
    assert!(
        matched >= 100 && matched * 100 >= total * 90,
        "{matched}/{total}; {}",
        call.log
    );
    // The engine decrypted baresip's SRTP: its packets counted as received.
    let ended = ivr.wait_for(&["call ended"], 1, Duration::from_secs(20));
    let received = ivr_tests::process::json_number(&ended[0], "received").unwrap_or(0);
    assert!(received >= 100, "{}", ended[0]);
    let secret_line = pki.key_pem.lines().nth(1).unwrap();
    assert!(!ivr.log().contains(secret_line));
    assert!(!ivr.log().contains("inline:"), "no SDES key in the log");
}

#[test]
fn a_plain_rtp_offer_on_a_tls_call_gets_plain_rtp() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let ivr = start(dir.path(), &pki, &[]);
    let call = baresip_call(ivr.tls.unwrap(), &dir.path().join("ca.pem"), None, 6);
    assert!(call.log.contains("Call established"), "{}", call.log);
    assert!(!call.log.contains("SRTP is Enabled"), "{}", call.log);
    let (matched, total) = greeting_frames_heard(&call.heard);
    assert!(
        matched >= 75 && matched * 100 >= total * 90,
        "{matched}/{total}; {}",
        call.log
    );
}

#[test]
fn doctor_checks_the_certificate_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (Pki::new(), Pki::new());
    let (cert, key) = first.install(dir.path());
    let args = |key: &Path| {
        vec![
            "doctor".to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--http".into(),
            "off".into(),
            "--data-dir".into(),
            dir.path().join("data").display().to_string(),
            "--tls-cert".into(),
            cert.display().to_string(),
            "--tls-key".into(),
            key.display().to_string(),
        ]
    };
    let run = |key: &Path| {
        let a = args(key);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        ivr_tests::process::run(dir.path(), &a, "")
    };
    let (_, out, err) = run(&key);
    assert!(out.contains("ok    TLS certificate"), "{out}{err}");
    let wrong = dir.path().join("wrong.pem");
    std::fs::write(&wrong, &second.key_pem).unwrap();
    let (code, out, _) = run(&wrong);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("does not match the certificate"), "{out}");
    assert!(!out.contains(second.key_pem.lines().nth(1).unwrap()));
}
