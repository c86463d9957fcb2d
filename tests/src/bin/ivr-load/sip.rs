//! The few SIP messages the load tools write and read (RFC 3261 §8.1.1, §8.2.6, §12.2),
//! shared by `ivr-load` and `rtp-echo`. Loopback benchmark helpers, not a SIP stack: they
//! trust what the engine under test sends.

use std::net::{Ipv4Addr, SocketAddr};

/// An INVITE from `from_user` at `me` offering PCMU and telephone-event (RFC 4733) at
/// `media_port` on 127.0.0.1.
pub fn invite(
    engine: SocketAddr,
    me: SocketAddr,
    call_id: &str,
    from_user: &str,
    media_port: u16,
) -> Vec<u8> {
    let sdp = format!(
        "v=0\r\no=load 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {media_port} RTP/AVP 0 101\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
    );
    format!(
        "INVITE sip:service@{engine} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{call_id}i;rport\r\nMax-Forwards: 70\r\n\
         From: <sip:{from_user}@{me}>;tag=f{call_id}\r\nTo: <sip:service@{engine}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:{from_user}@{me}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
    .into_bytes()
}

/// An ACK or BYE inside the dialog `call_id` (the caller's From tag is `f` + Call-ID).
pub fn in_dialog(
    engine: SocketAddr,
    me: SocketAddr,
    call_id: &str,
    to_tag: &str,
    method: &str,
    cseq: u32,
) -> Vec<u8> {
    format!(
        "{method} sip:service@{engine} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{call_id}{method}{cseq};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:load@{me}>;tag=f{call_id}\r\nTo: <sip:service@{engine}>;tag={to_tag}\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The value of the first header `name` (with its colon, e.g. `"Call-ID:"`).
pub fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines()
        .take_while(|l| !l.is_empty())
        .find(|l| {
            l.get(..name.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(name))
        })
        .map(|l| l[name.len()..].trim())
}

/// (status, Call-ID, To tag, CSeq method) of a response.
pub fn summarize(msg: &str) -> Option<(u16, String, String, String)> {
    let status = msg.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()?;
    let call_id = header(msg, "Call-ID:")?.to_string();
    let tag = header(msg, "To:")
        .and_then(|t| t.split("tag=").nth(1))
        .map(|t| t.split(';').next().unwrap_or(t).to_string())
        .unwrap_or_default();
    let method = header(msg, "CSeq:")?.split_whitespace().nth(1)?.to_string();
    Some((status, call_id, tag, method))
}

/// The method of a request, if `msg` is one.
pub fn request_method(msg: &str) -> Option<&str> {
    let first = msg.lines().next()?;
    first
        .ends_with("SIP/2.0")
        .then(|| first.split(' ').next())
        .flatten()
}

/// A response to the request `req` (RFC 3261 §8.2.6.2: Via, From, Call-ID and CSeq
/// copied; `to_tag` added to To when given and To has none), with an optional SDP body
/// and, with it, a Contact at `contact` (where the dialog's later requests go).
pub fn response(
    req: &str,
    status: &str,
    to_tag: Option<&str>,
    sdp: Option<(&str, SocketAddr)>,
) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for line in req.lines().skip(1).take_while(|l| !l.is_empty()) {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("via:")
            || lower.starts_with("from:")
            || lower.starts_with("call-id:")
            || lower.starts_with("cseq:")
        {
            out.push_str(line);
            out.push_str("\r\n");
        } else if lower.starts_with("to:") {
            out.push_str(line);
            if let Some(tag) = to_tag.filter(|_| !lower.contains("tag=")) {
                out.push_str(";tag=");
                out.push_str(tag);
            }
            out.push_str("\r\n");
        }
    }
    match sdp {
        Some((body, contact)) => out.push_str(&format!(
            "Contact: <sip:echo@{contact}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )),
        None => out.push_str("Content-Length: 0\r\n\r\n"),
    }
    out.into_bytes()
}

/// An SDP answer with PCMU and telephone-event at `port` on 127.0.0.1 (`rtp-echo`'s).
#[allow(dead_code)] // ivr-load answers nothing
pub fn answer_sdp(port: u16) -> String {
    format!(
        "v=0\r\no=echo 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
    )
}

/// The audio address of an SDP body (`c=IN IP4` and `m=audio`), if it has one.
pub fn sdp_audio(msg: &str) -> Option<SocketAddr> {
    let body = msg.split("\r\n\r\n").nth(1)?;
    let ip: Ipv4Addr = body
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))?
        .trim()
        .parse()
        .ok()?;
    let port = body
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(SocketAddr::from((ip, port)))
}

/// The `p`-th fraction of `sorted` (NaN when empty).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Field `key` of a `/proc/PID/FILE` in `Key: value` form (e.g. `VmRSS:` in KiB).
pub fn proc_field(pid: u32, file: &str, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The sum of numeric fields of `/proc/PID/stat`, numbered as proc(5) numbers them, in
/// seconds (they count clock ticks, 100 a second).
fn stat_seconds(pid: &str, fields: [usize; 2]) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // after the command's closing parenthesis, field 3 (the state) comes first; fields are
    // taken by position, as some are negative (a process without a terminal has tpgid -1)
    let after: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks: u64 = fields
        .iter()
        .filter_map(|f| after.get(f - 3)?.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}

/// CPU seconds (user + system, every thread) used so far by `pid` ("self" for this process):
/// utime and stime, fields 14 and 15.
pub fn cpu_seconds(pid: &str) -> f64 {
    stat_seconds(pid, [14, 15])
}

/// CPU seconds (user + system) used by this process's children that have exited and been
/// waited for: cutime and cstime, fields 16 and 17.
pub fn children_cpu_seconds() -> f64 {
    stat_seconds("self", [16, 17])
}

/// CPU seconds run so far by every live thread of `pid` ("self" for this process), from
/// `/proc/PID/task/*/schedstat` (the scheduler's nanosecond count: utime and stime are
/// sampled at the 10 ms tick, too coarse for a small process over a few seconds).
#[allow(dead_code)] // rtp-echo measures nothing
pub fn cpu_seconds_precise(pid: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    let ns: u64 = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    ns as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Spins until this process has run `cpu` seconds more by the scheduler's count (on a
    /// shared machine, wall time says little), or 10 s have passed; returns those seconds.
    fn spin(cpu: f64) -> f64 {
        let (t0, ns0) = (Instant::now(), cpu_seconds_precise("self"));
        let mut x = 0u64;
        loop {
            let ns = cpu_seconds_precise("self") - ns0;
            if ns >= cpu || t0.elapsed() > Duration::from_secs(10) {
                return ns;
            }
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        }
    }

    #[test]
    fn cpu_seconds_counts_user_time_and_children_count_apart() {
        // Before: fields were numbered after dropping the non-numeric ones, and tpgid is -1
        // without a terminal, so "utime + stime" read stime + cutime: a busy loop showed ~0.
        let ticks0 = cpu_seconds("self");
        let ns = spin(0.4);
        let ticks = cpu_seconds("self") - ticks0;
        assert!(ns >= 0.4, "the scheduler counted {ns} s");
        assert!(
            (ticks - ns).abs() < 0.15,
            "ticks {ticks} s, scheduler {ns} s"
        );

        let children0 = children_cpu_seconds();
        let status = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"])
            .status()
            .expect("sh");
        assert!(status.success());
        let children = children_cpu_seconds() - children0;
        assert!(children >= 0.1, "a waited-for child's {children} s");
    }
}
