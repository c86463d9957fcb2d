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
/// collide (SIPp would otherwise try 5060 and 6000 every time). The SIP port is one the
/// system says is free for UDP and TCP, so test processes running at once (whose process
/// ids may share a slot) do not take each other's.
///
/// The media port is the first free one of this process's slots (4 ports apart, 200 per
/// process id modulo 50, in 40,000-49,999). SIPp binds it and the port two above (audio
/// and video RTP, UDP on `-mi`) at start-up, even for a scenario without media, and exits
/// at once with no call made if either is taken. This range lies inside Linux's ephemeral
/// range (32768-60999), where every socket bound to port 0 lands: `ivr-load --media`'s
/// 1,000 callers alone hold about 350 ports in it, so an unchecked slot was taken in a few
/// runs out of a hundred (SIPp: "Unable to bind audio RTP socket", 0 calls).
fn ports() -> (String, String) {
    let free = |p: u16| std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok();
    let block = (std::process::id() % 50) * 200;
    for _ in 0..2_500 {
        let n = u32::from(NEXT_MEDIA.fetch_add(1, Ordering::SeqCst));
        let media = (40_000 + (block + n * 4) % 10_000) as u16;
        if free(media) && free(media + 2) {
            return (free_port().to_string(), media.to_string());
        }
    }
    panic!("no free SIPp media port pair in 40000-49999 on 127.0.0.1");
}

/// The arguments every run shares: loopback only, its own SIP and media ports, no stdin,
/// a timeout that counts as failure.
fn loopback_args<'a>(sip_port: &'a str, media_port: &'a str) -> [&'a str; 12] {
    [
        "-i",
        "127.0.0.1",
        "-p",
        sip_port,
        "-mi",
        "127.0.0.1",
        "-mp",
        media_port,
        "-nostdin",
        "-timeout_error",
        "-timeout",
        "60s",
    ]
}

/// A port free for both UDP and TCP on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        let port = udp.local_addr().expect("address").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP on 127.0.0.1");
}

/// `voicemail.xml` with the caller's audio (raw µ-law, see [`ulaw_message`]) and caller ID
/// in place, written into `dir`; returns its path. The caller picks the demo's voicemail
/// option with RFC 2833 digits and speaks until the `-d` pause ends.
pub fn voicemail_scenario(dir: &std::path::Path, audio: &std::path::Path, caller: &str) -> String {
    let template = std::fs::read_to_string(scenario("voicemail.xml")).expect("voicemail.xml");
    let text = template
        .replace("@AUDIO@", &audio.display().to_string())
        .replace("@CALLER@", caller);
    let path = dir.join("voicemail.xml");
    std::fs::write(&path, text).expect("write the scenario");
    path.display().to_string()
}

/// How a [`keys_scenario`] call ends.
#[derive(Debug, Clone, Copy)]
pub enum KeysEnd {
    /// The caller hangs up this many milliseconds after its last key.
    HangUpAfter(u32),
    /// The caller waits (up to 20 s) for the engine's BYE and answers it.
    EngineHangsUp,
}

/// `keys_path.xml` filled in, written into `dir` as `NAME.xml`; returns its path. The
/// caller calls the number `name`, and presses each key (`0`-`9`, `*`, `#`, by RFC 2833
/// with SIPp's pcaps) after its pause in milliseconds, then ends as `end` says.
pub fn keys_scenario(
    dir: &std::path::Path,
    name: &str,
    keys: &[(u32, char)],
    end: KeysEnd,
) -> String {
    let template = std::fs::read_to_string(scenario("keys_path.xml")).expect("keys_path.xml");
    let mut actions = String::new();
    for (pause, key) in keys {
        let pcap = match key {
            '*' => "star".to_string(),
            '#' => "pound".to_string(),
            d => d.to_string(),
        };
        actions.push_str(&format!(
            "  <pause milliseconds=\"{pause}\"/>\n  <nop><action><exec play_pcap_audio=\"/usr/share/sip-tester/dtmf_2833_{pcap}.pcap\"/></action></nop>\n"
        ));
    }
    let bye = |from: &str, to: &str| {
        format!(
            "      BYE sip:{name}@[remote_ip]:[remote_port] SIP/2.0\n      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n      From: {from}\n      To: {to}\n      Call-ID: [call_id]\n      CSeq: 2 BYE\n      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>\n      Max-Forwards: 70\n      Content-Length: 0\n"
        )
    };
    let end = match end {
        KeysEnd::HangUpAfter(ms) => format!(
            "  <pause milliseconds=\"{ms}\"/>\n  <send retrans=\"500\">\n    <![CDATA[\n{}\n    ]]>\n  </send>\n  <recv response=\"200\" crlf=\"true\"/>\n",
            bye(
                "<sip:+33612345678@[local_ip]:[local_port]>;tag=[pid]SIPpTagK[call_number]",
                &format!("<sip:{name}@[remote_ip]:[remote_port]>[peer_tag_param]")
            )
        ),
        KeysEnd::EngineHangsUp => "  <recv request=\"BYE\" timeout=\"20000\"/>\n  <send>\n    <![CDATA[\n      SIP/2.0 200 OK\n      [last_Via:]\n      [last_From:]\n      [last_To:]\n      [last_Call-ID:]\n      [last_CSeq:]\n      Content-Length: 0\n\n    ]]>\n  </send>\n  <timewait milliseconds=\"500\"/>\n".to_string(),
    };
    let text = template
        .replace("@USER@", name)
        .replace("@KEYS@", &actions)
        .replace("@END@", &end);
    let path = dir.join(format!("{name}.xml"));
    std::fs::write(&path, text).expect("write the scenario");
    path.display().to_string()
}

/// Write `samples` as raw µ-law (what SIPp's `rtp_stream` sends as payload type 0) to
/// `path`.
pub fn ulaw_message(path: &std::path::Path, samples: &[i16]) {
    let ulaw: Vec<u8> = samples
        .iter()
        .map(|s| ivr_audio::Codec::Pcmu.encode(*s))
        .collect();
    std::fs::write(path, ulaw).expect("write the message");
}

/// The result of one SIPp run.
pub struct Run {
    /// Exit status code (0: every call succeeded).
    pub code: i32,
    /// What SIPp printed.
    pub output: String,
}

/// Run SIPp against `target` with `args`; fails loudly if SIPp is not installed. Killed
/// after 120 s.
pub fn run(target: SocketAddr, args: &[&str]) -> Run {
    run_for(target, args, 120)
}

/// [`run`], killed after `limit` seconds (a benchmark's longer run).
pub fn run_for(target: SocketAddr, args: &[&str], limit: u32) -> Run {
    let found = Command::new("sipp").arg("-v").output().is_ok();
    assert!(
        found,
        "SIPp is not installed: `apt-get install -y sip-tester` (the test command does this)"
    );
    let (sip_port, media_port) = ports();
    let out: Output = Command::new("timeout")
        .arg(limit.to_string())
        .arg("sipp")
        .arg(target.to_string())
        .args(loopback_args(&sip_port, &media_port))
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

/// A SIPp running in the background as a UAS (it waits for calls), killed on drop.
pub struct Uas {
    child: std::process::Child,
    log: tempfile::NamedTempFile,
    /// The address it listens on (UDP).
    pub addr: SocketAddr,
}

/// Start SIPp as a UAS with `args` (typically `-sf SCENARIO -m 1`) on a free port of
/// 127.0.0.1; fails loudly if SIPp is not installed. It answers as soon as its socket is
/// bound; callers that send over UDP with retransmissions need not wait for it.
pub fn spawn_uas(args: &[&str]) -> Uas {
    let (sip_port, media_port) = ports();
    let log = tempfile::NamedTempFile::new().expect("temp file");
    let child = Command::new("sipp")
        .args(loopback_args(&sip_port, &media_port))
        .args(args)
        .stdout(log.reopen().expect("log"))
        .stderr(log.reopen().expect("log"))
        .spawn()
        .expect(
            "SIPp is not installed: `apt-get install -y sip-tester` (the test command does this)",
        );
    Uas {
        child,
        log,
        addr: SocketAddr::from(([127, 0, 0, 1], sip_port.parse::<u16>().expect("port"))),
    }
}

impl Uas {
    /// Whether SIPp has exited, with its run if so.
    pub fn try_finish(&mut self) -> Option<Run> {
        let status = self.child.try_wait().expect("wait for sipp")?;
        Some(Run {
            code: status.code().unwrap_or(-1),
            output: std::fs::read_to_string(self.log.path()).unwrap_or_default(),
        })
    }

    /// What SIPp printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Uas {
    fn drop(&mut self) {
        // Our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// The cumulative value SIPp's final statistics give for a duration, e.g. `Response Time 1`
/// (the mean from the INVITE to its final response) or `Call Length` (the mean call), printed
/// as `HH:MM:SS:microseconds`.
pub fn time_stat(output: &str, name: &str) -> Option<std::time::Duration> {
    let value = output
        .lines()
        .rev()
        .find(|l| l.contains(name))?
        .split('|')
        .nth(2)?
        .trim();
    let parts: Vec<u64> = value
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s, us] = parts[..] else {
        return None;
    };
    Some(std::time::Duration::from_micros(
        ((h * 60 + m) * 60 + s) * 1_000_000 + us,
    ))
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

/// Rewrite a scenario written for calling the engine directly into one that follows the
/// route set through a record-routing proxy (RFC 3261 §12.2.1.1): the 200 to the INVITE
/// keeps its Record-Route (`rrs="true"`), and ACK and BYE go to the engine's Contact
/// (`[next_url]`) with the route set in Route headers (`[routes]`).
pub fn follow_route_set(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len() + 256);
    let mut lines = xml.lines().peekable();
    let mut first_200 = true;
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if first_200 && trimmed.starts_with("<recv response=\"200\"") {
            first_200 = false;
            out.push_str(&line.replacen(
                "<recv response=\"200\"",
                "<recv response=\"200\" rrs=\"true\"",
                1,
            ));
            out.push('\n');
            continue;
        }
        let method = ["ACK ", "BYE "]
            .into_iter()
            .find(|m| trimmed.starts_with(m));
        if let Some(m) = method
            && trimmed.ends_with(" SIP/2.0")
        {
            let indent = &line[..line.len() - trimmed.len()];
            out.push_str(&format!("{indent}{m}[next_url] SIP/2.0\n"));
            // The Via line, then the Route headers.
            if let Some(via) = lines.next() {
                out.push_str(via);
                out.push('\n');
            }
            out.push_str(&format!("{indent}[routes]\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn follow_route_set_rewrites_ack_and_bye() {
        let xml = std::fs::read_to_string(super::scenario("hold_then_bye.xml")).unwrap();
        let out = super::follow_route_set(&xml);
        assert_eq!(out.matches("[next_url] SIP/2.0").count(), 2, "{out}");
        assert_eq!(out.matches("[routes]").count(), 2, "{out}");
        assert_eq!(out.matches("rrs=\"true\"").count(), 1, "{out}");
        assert!(out.contains("INVITE sip:service@[remote_ip]:[remote_port] SIP/2.0"));
    }

    #[test]
    fn time_stat_reads_the_cumulative_column_of_the_last_screen() {
        // as SIPp 3.6 prints its statistics screen; the last one is the final one
        let out = "  Response Time 1        | 00:00:00:001000           | 00:00:00:001000          \n\
                   \x20 Response Time 1        | 00:00:00:000000           | 00:00:01:012345          \n\
                   \x20 Call Length            | 00:00:00:000000           | 01:02:03:000004          \n";
        let ms = |name| super::time_stat(out, name).map(|d| d.as_micros());
        assert_eq!(ms("Response Time 1"), Some(1_012_345));
        assert_eq!(ms("Call Length"), Some(3_723_000_004));
        assert_eq!(ms("Response Time 2"), None);
    }
}
