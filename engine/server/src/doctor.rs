//! `ivr doctor`: checks what a deployment needs before `ivr serve` runs, and says how to fix
//! each problem. It takes exactly `ivr serve`'s flags (and settings file), so it checks the
//! very ports, folders and database the service would use.

use crate::{HttpAddr, ServeArgs, redact};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// How one check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Ok,
    Warn,
    Fail,
}

struct Report {
    worst: Verdict,
}

impl Report {
    fn say(&mut self, verdict: Verdict, what: &str, fix: Option<&str>) {
        let tag = match verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        };
        println!("{tag}  {what}");
        if let Some(fix) = fix {
            println!("      fix: {fix}");
        }
        self.worst = self.worst.max(verdict);
    }
}

/// Run every check; exit status 0 when nothing failed (warnings allowed), 1 otherwise.
pub fn run(args: &ServeArgs, settings: Option<&Path>) -> std::process::ExitCode {
    let mut r = Report { worst: Verdict::Ok };
    match settings {
        Some(f) => r.say(Verdict::Ok, &format!("settings file {}", f.display()), None),
        None => r.say(
            Verdict::Ok,
            "no settings file: flags, IVR_* variables and defaults",
            None,
        ),
    }
    config(&mut r, args);
    ports(&mut r, args);
    tls(&mut r, args);
    data_dir(&mut r, &args.data_dir);
    database(&mut r, args);
    file_limit(&mut r, args.max_calls);
    shards(&mut r, args);
    clock(&mut r);
    println!(
        "{}",
        match r.worst {
            Verdict::Ok => "all good",
            Verdict::Warn => "usable, with warnings",
            Verdict::Fail => "not ready: fix the FAIL lines",
        }
    );
    std::process::ExitCode::from(u8::from(r.worst == Verdict::Fail))
}

fn config(r: &mut Report, args: &ServeArgs) {
    let Some(path) = &args.config else {
        r.say(Verdict::Ok, "menus: the embedded demo (no --config)", None);
        return;
    };
    match ivr_server::config::load_file_unrendered(path) {
        Ok((menus, speech)) => {
            r.say(
                Verdict::Ok,
                &format!(
                    "menus: {} is valid ({} menus, {} warning(s): see ivr check)",
                    path.display(),
                    menus.len(),
                    menus.warnings().len()
                ),
                None,
            );
            if speech.uses_say && speech.espeak_missing {
                r.say(
                    Verdict::Fail,
                    "say: prompts need espeak-ng, which is not installed",
                    Some("apt-get install espeak-ng"),
                );
            } else if speech.uses_say {
                r.say(
                    Verdict::Ok,
                    "espeak-ng has the voices the say: prompts use",
                    None,
                );
            }
        }
        Err(e) => r.say(
            Verdict::Fail,
            &format!("menus: {e}"),
            Some(&format!("ivr check {} lists every error", path.display())),
        ),
    }
}

/// The certificate and key load and match, and the SIP-over-TLS port is free.
fn tls(r: &mut Report, args: &ServeArgs) {
    let (Some(cert), Some(key)) = (&args.tls.tls_cert, &args.tls.tls_key) else {
        r.say(Verdict::Ok, "TLS off: no --tls-cert and --tls-key", None);
        return;
    };
    match ivr_server::tls::CertStore::load(cert, key) {
        Ok(_) => r.say(
            Verdict::Ok,
            &format!("TLS certificate {} and its key are usable", cert.display()),
            None,
        ),
        Err(e) => r.say(
            Verdict::Fail,
            &format!("TLS: {e}"),
            Some("give a PEM certificate chain and the PEM private key that belongs to it"),
        ),
    }
    let addr = args.tls.sip_address(args.listen);
    if addr.port() != 0 {
        match std::net::TcpListener::bind(addr) {
            Ok(_) => r.say(Verdict::Ok, &format!("SIP over TLS {addr} is free"), None),
            Err(e) => r.say(
                Verdict::Fail,
                &format!("SIP over TLS {addr}: {e} (if that is this ivr, running, all is well)"),
                Some("choose another with --sip-tls-listen ADDR:PORT"),
            ),
        }
    }
}

fn ports(r: &mut Report, args: &ServeArgs) {
    let sip = args.listen;
    if sip.port() == 0 {
        r.say(
            Verdict::Ok,
            "SIP port 0: a free port is picked at start",
            None,
        );
    } else {
        let udp = std::net::UdpSocket::bind(sip);
        let tcp = std::net::TcpListener::bind(sip);
        match (udp, tcp) {
            (Ok(_), Ok(_)) => r.say(Verdict::Ok, &format!("SIP {sip} is free (UDP and TCP)"), None),
            (Err(e), _) | (_, Err(e)) => r.say(
                Verdict::Fail,
                &format!("SIP {sip}: {e} (if that is this ivr, running, all is well)"),
                Some(if sip.port() < 1024 {
                    "another SIP server holds it, or a port below 1024 needs CAP_NET_BIND_SERVICE (the packaged unit grants it); --listen picks another"
                } else {
                    "stop what holds it (ss -lunp; ss -ltnp), or choose another with --listen ADDR:PORT"
                }),
            ),
        }
    }
    let http: Option<SocketAddr> = match args.http {
        Some(HttpAddr(a)) => a,
        None => Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
    };
    match http {
        None => r.say(Verdict::Ok, "HTTP off: no staff page, API or metrics", None),
        Some(a) if a.port() == 0 => r.say(
            Verdict::Ok,
            "HTTP port 0: a free port is picked at start",
            None,
        ),
        Some(a) => match std::net::TcpListener::bind(a) {
            Ok(_) => r.say(Verdict::Ok, &format!("HTTP {a} is free"), None),
            Err(e) => r.say(
                Verdict::Fail,
                &format!("HTTP {a}: {e} (if that is this ivr, running, all is well)"),
                Some("choose another with --http ADDR:PORT, or --http off"),
            ),
        },
    }
    let range = args.rtp_ports.clone();
    let pairs = usize::from(range.end().saturating_sub(*range.start())) / 2 + 1;
    if pairs < args.max_calls {
        r.say(
            Verdict::Warn,
            &format!(
                "RTP ports {}-{} hold {pairs} calls, fewer than --max-calls {}",
                range.start(),
                range.end(),
                args.max_calls
            ),
            Some("widen --rtp-ports or lower --max-calls"),
        );
    } else {
        r.say(
            Verdict::Ok,
            &format!(
                "RTP ports {}-{}: room for {pairs} calls",
                range.start(),
                range.end()
            ),
            None,
        );
    }
}

fn data_dir(r: &mut Report, dir: &Path) {
    let probe = dir.join(format!(".ivr-doctor-{}", std::process::id()));
    let result = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b"ok"))
        .and_then(|()| std::fs::remove_file(&probe));
    match result {
        Ok(()) => r.say(Verdict::Ok, &format!("data folder {} is writable", dir.display()), None),
        Err(e) => r.say(
            Verdict::Fail,
            &format!("data folder {}: {e}", dir.display()),
            Some("create it and give it to the user ivr runs as (the package: ivr, /var/lib/ivr); run doctor as that user: sudo -u ivr ivr doctor"),
        ),
    }
}

fn database(r: &mut Report, args: &ServeArgs) {
    let url = args
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", args.data_dir.join("callbacks.db").display()));
    let shown = redact(&url);
    let opened = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            rt.block_on(async {
                match tokio::time::timeout(
                    Duration::from_secs(10),
                    ivr_voicemail::store::Store::open(&url),
                )
                .await
                {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("no answer in 10 s".to_string()),
                }
            })
        });
    match opened {
        Ok(()) => r.say(
            Verdict::Ok,
            &format!("callback store {shown}: reachable, schema up to date (migrated if it was not)"),
            None,
        ),
        Err(e) => r.say(
            Verdict::Fail,
            &format!("callback store {shown}: {e}"),
            Some("check --database (sqlite://FILE or postgres://USER@HOST/DB), that the server is up and the user may create tables"),
        ),
    }
}

/// The soft limit on open files, from /proc (Linux).
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn shards(r: &mut Report, args: &ServeArgs) {
    let how = if args.shards.is_some() {
        "--shards"
    } else {
        "one per core"
    };
    r.say(
        Verdict::Ok,
        &format!("{} engine shards ({how})", args.shards()),
        None,
    );
}

fn file_limit(r: &mut Report, max_calls: usize) {
    // Per call: an RTP and an RTCP socket; plus TCP connections, files and the database.
    let needed = max_calls as u64 * 2 + 256;
    match open_files_limit() {
        Some(n) if n >= needed => r.say(
            Verdict::Ok,
            &format!("open files limit {n} (--max-calls {max_calls} needs about {needed})"),
            None,
        ),
        Some(n) => r.say(
            Verdict::Warn,
            &format!("open files limit {n}: --max-calls {max_calls} needs about {needed}"),
            Some("raise it: LimitNOFILE= in the systemd unit (the package sets 65536), or ulimit -n; or lower --max-calls"),
        ),
        None => r.say(Verdict::Warn, "open files limit: unknown (no /proc/self/limits)", None),
    }
}

fn clock(r: &mut Report) {
    let now = ivr_server::clock::unix_now();
    // 2025-01-01: a clock before this release's time is wrong, and schedules with it.
    if now < 1_735_689_600 {
        r.say(
            Verdict::Fail,
            "the system clock is in the past (before 2025): opening hours and holidays would be wrong",
            Some("set the time (timedatectl set-ntp true)"),
        );
        return;
    }
    let synced = std::process::Command::new("timedatectl")
        .args(["show", "-p", "NTPSynchronized", "--value"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "yes");
    match synced {
        Some(true) => r.say(Verdict::Ok, "clock synchronized (NTP)", None),
        Some(false) => r.say(
            Verdict::Warn,
            "clock not synchronized: schedules and timestamps may drift",
            Some("timedatectl set-ntp true (or install chrony)"),
        ),
        None => r.say(
            Verdict::Ok,
            "clock plausible (timedatectl not available to tell whether NTP keeps it)",
            None,
        ),
    }
}
