//! Running Kamailio (Debian package `kamailio`) on 127.0.0.1 in front of engines, with the
//! repository's `kamailio/kamailio.cfg`, a free port and a run folder of its own. It never
//! relies on a system Kamailio service (nor on port 5060).

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The repository's Kamailio config.
pub fn config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../kamailio/kamailio.cfg")
}

/// The `kamailio` program; fails loudly when it is not installed.
fn program() -> PathBuf {
    for p in ["/usr/sbin/kamailio", "/usr/local/sbin/kamailio"] {
        if std::path::Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    let found = Command::new("kamailio").arg("-v").output().is_ok();
    assert!(
        found,
        "Kamailio is not installed: `apt-get install -y kamailio` (scripts/test.sh does this)"
    );
    PathBuf::from("kamailio")
}

/// A running Kamailio; stopped (SIGTERM, which ends its worker processes) when dropped.
pub struct Kamailio {
    child: Child,
    /// Where it listens, UDP and TCP.
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Kamailio {
    /// Start Kamailio in front of `engines` (one dispatcher set, round robin), probing them
    /// with OPTIONS every second and giving an INVITE up after `invite_timeout_ms` without
    /// an answer. Returns once it answers an OPTIONS.
    pub fn start(engines: &[SocketAddr], invite_timeout_ms: u32) -> Kamailio {
        let dir = tempfile::tempdir().expect("temp dir");
        let list = dir.path().join("dispatcher.list");
        let lines: String = engines.iter().map(|e| format!("1 sip:{e}\n")).collect();
        std::fs::write(&list, lines).expect("write dispatcher.list");
        let run = dir.path().join("run");
        std::fs::create_dir_all(&run).expect("run dir");
        let port = crate::sipp::free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut child = Command::new(program())
            .args(["-f"])
            .arg(config())
            // Foreground, logs on stderr, small memory, its own run folder and pid file.
            .args(["-DD", "-E", "-m", "64", "-M", "8"])
            .args(["-l", &format!("udp:{addr}"), "-l", &format!("tcp:{addr}")])
            .arg("-Y")
            .arg(&run)
            .arg("-P")
            .arg(run.join("kamailio.pid"))
            .args(["-A", &format!("DISPATCHER_LIST=\"{}\"", list.display())])
            .args(["-A", "PING_INTERVAL=1", "-A", "CHILDREN=2"])
            .args(["-A", &format!("INVITE_TIMEOUT={invite_timeout_ms}")])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kamailio");
        let log = crate::process::capture(child.stderr.take().expect("stderr"));
        let mut k = Kamailio {
            child,
            addr,
            log,
            _dir: dir,
        };
        k.wait_ready();
        k
    }

    /// Wait until Kamailio answers an OPTIONS sent to itself.
    fn wait_ready(&mut self) {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let end = Instant::now() + Duration::from_secs(20);
        let mut n = 0;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("kamailio exited with {status}:\n{}", self.log());
            }
            n += 1;
            sock.send_to(
                options(sock.local_addr().expect("addr"), self.addr, n).as_bytes(),
                self.addr,
            )
            .expect("send OPTIONS");
            let mut buf = [0u8; 2048];
            if let Ok((len, _)) = sock.recv_from(&mut buf)
                && buf[..len].starts_with(b"SIP/2.0 200")
            {
                return;
            }
            assert!(
                Instant::now() < end,
                "kamailio did not answer OPTIONS on {}:\n{}",
                self.addr,
                self.log()
            );
        }
    }

    /// What Kamailio logged so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // SIGTERM to the main process ends its workers too; SIGKILL would orphan them.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An out-of-dialog OPTIONS from `from` to `to` (a health probe, as a proxy sends).
pub fn options(from: SocketAddr, to: SocketAddr, n: u32) -> String {
    format!(
        "OPTIONS sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bKprobe{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@{from}>;tag=probe{n}\r\nTo: <sip:{to}>\r\n\
         Call-ID: probe-{n}-{from}\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Send one OPTIONS to `to` over UDP and return the status code of the answer.
pub fn probe(to: SocketAddr) -> Option<u16> {
    let sock = UdpSocket::bind("127.0.0.1:0").ok()?;
    sock.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let n = std::process::id();
    sock.send_to(options(sock.local_addr().ok()?, to, n).as_bytes(), to)
        .ok()?;
    let mut buf = [0u8; 2048];
    let (len, _) = sock.recv_from(&mut buf).ok()?;
    std::str::from_utf8(&buf[..len])
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
