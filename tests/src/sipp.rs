//! Running SIPp (Debian package `sip-tester`) against the engine.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU16, Ordering};

/// The path of a scenario file shipped in `tests/sipp/`.
pub fn scenario(name: &str) -> &'static str {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("sipp")
        .join(name);
    assert!(path.exists(), "{} is missing", path.display());
    // Leaked once per scenario name and test: a few bytes, and it keeps argument lists simple.
    Box::leak(path.to_string_lossy().into_owned().into_boxed_str())
}

static NEXT_MEDIA: AtomicU16 = AtomicU16::new(0);

/// A distinct SIPp SIP port (`-p`) and media port (`-mp`) per run, so parallel runs do not
/// collide (SIPp would otherwise try 5060 and 6000 every time).
fn ports() -> (String, String) {
    let n = NEXT_MEDIA.fetch_add(1, Ordering::SeqCst);
    let slot = (std::process::id() as u16 % 50) * 200 + n * 4;
    ((50_000 + slot).to_string(), (40_000 + slot).to_string())
}

/// The result of one SIPp run.
pub struct Run {
    /// Exit status code (0: every call succeeded).
    pub code: i32,
    /// What SIPp printed.
    pub output: String,
}

/// Run SIPp against `target` with `args`; fails loudly if SIPp is not installed.
pub fn run(target: SocketAddr, args: &[&str]) -> Run {
    let found = Command::new("sipp").arg("-v").output().is_ok();
    assert!(
        found,
        "SIPp is not installed: `apt-get install -y sip-tester` (the test command does this)"
    );
    let (sip_port, media_port) = ports();
    let out: Output = Command::new("timeout")
        .arg("120")
        .arg("sipp")
        .arg(target.to_string())
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &sip_port,
            "-mi",
            "127.0.0.1",
            "-mp",
            &media_port,
        ])
        .args(["-nostdin", "-timeout_error", "-timeout", "60s"])
        .args(args)
        .output()
        .expect("run sipp");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Run {
        code: out.status.code().unwrap_or(-1),
        output,
    }
}

/// The value SIPp's final statistics give for a counter, e.g. `Successful call`.
pub fn stat(output: &str, name: &str) -> Option<u64> {
    output
        .lines()
        .rev()
        .find(|l| l.contains(name))
        .and_then(|l| l.split('|').nth(2))
        .and_then(|v| v.trim().parse().ok())
}

/// A moment a scenario noted with `<log message="WHAT [call_id] [timestamp]"/>` when SIPp
/// ran with `-trace_logs -log_file FILE`: SIPp's own record of when it did something (for
/// `voicemail.xml`: `stream` when the RTP stream starts, `bye` when it hangs up).
#[derive(Debug, Clone)]
pub struct Mark {
    /// The first word of the message (`stream`, `bye`).
    pub what: String,
    /// The SIP Call-ID of the call.
    pub call_id: String,
    /// When, by the wall clock (microseconds).
    pub at: jiff::Timestamp,
}

/// The marks in a SIPp log file, in the order written. A line reads
/// `WHAT CALL-ID DATE\tTIME\tEPOCH.MICROS`.
pub fn marks(log: &std::path::Path) -> Vec<Mark> {
    let text =
        std::fs::read_to_string(log).unwrap_or_else(|e| panic!("SIPp log {}: {e}", log.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let [what, call_id, .., epoch] = words[..] else {
                panic!("not a mark: {l:?}")
            };
            let (secs, micros) = epoch
                .split_once('.')
                .unwrap_or_else(|| panic!("no epoch time in {l:?}"));
            let at = jiff::Timestamp::new(
                secs.parse().expect("seconds"),
                micros.parse::<i32>().expect("microseconds") * 1000,
            )
            .expect("a time");
            Mark {
                what: what.to_string(),
                call_id: call_id.to_string(),
                at,
            }
        })
        .collect()
}

/// The mark `what` of call `call_id`.
pub fn mark(marks: &[Mark], what: &str, call_id: &str) -> jiff::Timestamp {
    marks
        .iter()
        .find(|m| m.what == what && m.call_id == call_id)
        .unwrap_or_else(|| panic!("no {what} mark for {call_id} in {marks:?}"))
        .at
}
