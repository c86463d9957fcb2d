//! Running the real `ivr` binary on 127.0.0.1 with port 0.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `ivr` binary built by cargo next to this test binary (or `$IVR_BIN`).
pub fn ivr_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("IVR_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> -> target/<profile>/ivr
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("ivr");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p ivr-server` (the test command does)",
        bin.display()
    );
    bin
}

/// Run `ivr ARGS` to the end from the folder `dir`, with `stdin` as its input (a password
/// for `ivr staff add-user`, keys for `ivr simulate`); (exit code, or -1 if killed by a
/// signal; stdout; stderr). For `ivr serve`, which does not end, see [`Ivr::start`].
pub fn run(dir: &std::path::Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(ivr_binary())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ivr");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait for ivr");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

static NEXT_RANGE: AtomicU16 = AtomicU16::new(0);

/// A distinct RTP port range for each engine a test process starts.
fn rtp_range() -> String {
    let n = NEXT_RANGE.fetch_add(1, Ordering::SeqCst);
    let base = 20_000 + (std::process::id() as u16 % 20) * 1_000 + n * 200;
    format!("{}-{}", base, base + 199)
}

/// A running engine; killed when dropped.
pub struct Ivr {
    child: Child,
    /// The SIP address it listens on (UDP and TCP).
    pub sip: SocketAddr,
    /// The HTTP address (metrics, admin), unless started with `--http off`.
    pub http: Option<SocketAddr>,
    /// The SIP-over-TLS address, when started with `--tls-cert` and `--tls-key`.
    pub tls: Option<SocketAddr>,
    log: Arc<Mutex<String>>,
    data: std::path::PathBuf,
    _owned: Option<tempfile::TempDir>,
}

impl Ivr {
    /// Start `ivr serve` on 127.0.0.1:0 with extra arguments; waits for its listen line.
    pub fn start(extra: &[&str]) -> Ivr {
        let data = tempfile::tempdir().expect("temp dir");
        let mut ivr = Ivr::start_in(data.path(), extra);
        ivr._owned = Some(data);
        ivr
    }

    /// [`Ivr::start`] with a data folder the caller keeps (to restart on the same data).
    pub fn start_in(data: &std::path::Path, extra: &[&str]) -> Ivr {
        Ivr::launch(None, data, extra, &[])
    }

    /// [`Ivr::start_in`] with the binary run by a wrapper command (e.g. `prlimit
    /// --nofile=4096:4096 --`, to start it with fewer file descriptors).
    pub fn start_wrapped(data: &std::path::Path, extra: &[&str], wrapper: &[&str]) -> Ivr {
        Ivr::launch(None, data, extra, wrapper)
    }

    /// [`Ivr::start_in`], run from the folder `cwd` (relative paths are taken from there).
    pub fn start_from(
        cwd: Option<&std::path::Path>,
        data: &std::path::Path,
        extra: &[&str],
    ) -> Ivr {
        Ivr::launch(cwd, data, extra, &[])
    }

    /// Start the binary from `cwd` (or here), behind `wrapper` (or directly).
    fn launch(
        cwd: Option<&std::path::Path>,
        data: &std::path::Path,
        extra: &[&str],
        wrapper: &[&str],
    ) -> Ivr {
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(ivr_binary());
                c
            }
            None => Command::new(ivr_binary()),
        };
        if let Some(dir) = cwd {
            command.current_dir(dir);
        }
        let mut child = command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
                "--rtp-ports",
                &rtp_range(),
                "--data-dir",
            ])
            .arg(data)
            .args(if extra.contains(&"--http") {
                &[][..]
            } else {
                &["--http", "127.0.0.1:0"][..]
            })
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ivr");
        let log = capture(child.stderr.take().expect("stderr"));
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("read listen line");
        let sip = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("udp="))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "no listen line from ivr, got {line:?}; log:\n{}",
                    log.lock().map(|l| l.clone()).unwrap_or_default()
                )
            });
        let http = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http="))
            .and_then(|a| a.parse().ok());
        let tls = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("tls="))
            .and_then(|a| a.parse().ok());
        Ivr {
            child,
            sip,
            http,
            tls,
            log,
            data: data.to_path_buf(),
            _owned: None,
        }
    }

    /// The engine's process id (to read `/proc/PID/status` and the like).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The engine's `--data-dir` (recordings, the SQLite store).
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data
    }

    /// Kill the engine with SIGKILL (a crash) and wait for it to be gone.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Everything the engine logged so far (JSON lines).
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Wait until the log contains `n` lines matching every one of `needles`, up to `timeout`.
    /// Returns the matching lines.
    pub fn wait_for(&self, needles: &[&str], n: usize, timeout: Duration) -> Vec<String> {
        let end = Instant::now() + timeout;
        loop {
            let lines: Vec<String> = self
                .log()
                .lines()
                .filter(|l| needles.iter().all(|x| l.contains(x)))
                .map(str::to_string)
                .collect();
            if lines.len() >= n || Instant::now() >= end {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Send a signal (`HUP`, `TERM`...) to the engine.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
        assert!(ok.is_ok_and(|s| s.success()), "kill -{name} failed");
    }

    /// Wait up to `timeout` for the engine to exit on its own (after a signal sent with
    /// [`Ivr::signal`]); `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How many log lines contain every one of `needles` right now.
    pub fn count(&self, needles: &[&str]) -> usize {
        self.log()
            .lines()
            .filter(|l| needles.iter().all(|x| l.contains(x)))
            .count()
    }

    /// Send SIGTERM and wait for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < end,
                "ivr did not exit after SIGTERM; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Ivr {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Collect what a child process writes to `stream`, line by line, as it comes.
pub fn capture(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let mut l = sink.lock().expect("log lock");
            l.push_str(&line);
            l.push('\n');
        }
    });
    log
}

/// When the engine wrote a JSON log line, by its own clock (the `timestamp` field).
pub fn log_time(line: &str) -> jiff::Timestamp {
    let v: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
    v["timestamp"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no timestamp in {line}"))
}

/// The engine's handle of the call a JSON log line is about (`call-1`...), from its span.
pub fn log_call(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v["span"]["call"].as_str().map(str::to_string)
}

impl Ivr {
    /// The first log line about call `call` (its handle, `call-1`...) with message `message`.
    pub fn call_event(&self, call: &str, message: &str) -> Option<String> {
        let (c, m) = (
            format!("\"call\":\"{call}\""),
            format!("\"message\":\"{message}\""),
        );
        self.log()
            .lines()
            .find(|l| l.contains(&c) && l.contains(&m))
            .map(str::to_string)
    }

    /// Check that the engine paced a call's prompts in real time, by its own log: the RTP
    /// packets sent (from the `call ended` line `ended`) against the time from the call's
    /// `answered` line to `ended`, one packet per 20 ms. Never more than that (no burst);
    /// at most a tenth fewer, for frames the engine skips when a loaded machine wakes it
    /// more than three frames late (see `media.rs`). Returns the call's length in ms.
    pub fn assert_paced(&self, ended: &str) -> u64 {
        let call = log_call(ended).unwrap_or_else(|| panic!("no call in {ended}"));
        let answered = self
            .call_event(&call, "answered")
            .unwrap_or_else(|| panic!("{call} was never answered:\n{}", self.log()));
        let ms = log_time(ended)
            .duration_since(log_time(&answered))
            .as_millis() as u64;
        let due = ms / 20;
        let sent = json_number(ended, "sent").unwrap_or(0);
        assert!(
            sent <= due + 1 && sent * 10 >= due * 9,
            "{call}: sent {sent} RTP packets in {ms} ms between answer and end ({due} due)"
        );
        ms
    }
}

/// A numeric field of a JSON log line, e.g. `"sent":123`.
pub fn json_number(line: &str, field: &str) -> Option<u64> {
    let key = format!("\"{field}\":");
    let rest = &line[line.find(&key)? + key.len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Run the test `name` of the current test binary again inside its own network namespace
/// (`unshare -n`: only `lo`, up, with 127.0.0.1 and a private 10.9.9.9 that exists nowhere
/// else), with `IVR_TEST_IN_NETNS` set, and assert that it passed there. For peers such as
/// baresip that put a non-loopback address in their SDP.
pub fn rerun_in_own_netns(name: &str) {
    let exe = std::env::current_exe().expect("the test binary");
    let out = Command::new("unshare")
        .args([
            "-n",
            "--",
            "sh",
            "-c",
            "ip link set lo up && ip addr add 10.9.9.9/32 dev lo && exec \"$0\" \"$@\"",
        ])
        .arg(&exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("IVR_TEST_IN_NETNS", "1")
        .env("IVR_BIN", ivr_binary())
        .output()
        .expect("unshare (util-linux) runs the test in its own network namespace");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "the test in its network namespace failed:\n{text}"
    );
}

/// Whether this process is the re-run made by [`rerun_in_own_netns`].
pub fn in_own_netns() -> bool {
    std::env::var_os("IVR_TEST_IN_NETNS").is_some()
}
