//! Behind a proxy, black box: two real `ivr serve` processes behind one Kamailio (the
//! repository's `kamailio/kamailio.cfg`, started on loopback by the test), called by SIPp
//! over UDP and TCP with scenarios that follow the route set (RFC 3261 §12.2.1.1).

use ivr_tests::kamailio::{Kamailio, probe};
use ivr_tests::process::Ivr;
use ivr_tests::sipp::{self, scenario};
use ivr_voicemail::store::{Filter, Store};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// An engine's calls so far.
fn started(ivr: &Ivr) -> usize {
    ivr.count(&["call started"])
}

fn assert_ok(run: &sipp::Run, k: &Kamailio, engines: &[&Ivr]) {
    if run.code != 0 {
        let logs: Vec<String> = engines.iter().map(|e| e.log()).collect();
        panic!(
            "SIPp failed:\n{}\n--- kamailio ---\n{}\n--- engines ---\n{}",
            run.output,
            k.log(),
            logs.join("\n---\n")
        );
    }
}

/// Run a scenario of `tests/sipp/` against the proxy at `proxy` with extra SIPp arguments.
fn through(proxy: std::net::SocketAddr, file: &str, args: &[&str]) -> sipp::Run {
    let mut all = vec!["-sf", scenario(file)];
    all.extend_from_slice(args);
    sipp::run(proxy, &all)
}

fn transport(tcp: bool) -> &'static str {
    if tcp { "t1" } else { "u1" }
}

/// Calls through the proxy over UDP and over TCP: the 200 OK carries Record-Route (the
/// scenario checks it), ACK and BYE follow the route set, every call succeeds and ends with
/// the caller's BYE, and the calls are spread over both engines.
#[test]
fn calls_follow_the_route_set_and_spread_over_both_engines() {
    // The proxy (127.0.0.1) is trusted: its P-Asserted-Identity names the caller.
    let trusted = ["--sip-trusted-proxy", "127.0.0.1"];
    let (a, b) = (Ivr::start(&trusted), Ivr::start(&trusted));
    let k = Kamailio::start(&[a.sip, b.sip], 1500);
    for tcp in [false, true] {
        let run = through(
            k.addr,
            "proxy_call.xml",
            &[
                "-m",
                "20",
                "-l",
                "10",
                "-r",
                "20",
                "-d",
                "500",
                "-t",
                transport(tcp),
            ],
        );
        assert_ok(&run, &k, &[&a, &b]);
        assert_eq!(sipp::stat(&run.output, "Successful call"), Some(20));
    }
    let ended = |e: &Ivr| e.wait_for(&["call ended", "CallerHungUp"], 1, WAIT).len();
    let (na, nb) = (started(&a), started(&b));
    assert_eq!(na + nb, 40, "a {na}, b {nb}");
    assert!(na >= 10 && nb >= 10, "round robin: a {na}, b {nb}");
    assert!(ended(&a) > 0 && ended(&b) > 0);
    let hung_up =
        a.count(&["call ended", "CallerHungUp"]) + b.count(&["call ended", "CallerHungUp"]);
    assert_eq!(hung_up, 40, "every call ended with the caller's BYE");
    assert_eq!(
        a.count(&["call started", r#""caller":"sipp""#])
            + b.count(&["call started", r#""caller":"sipp""#]),
        40,
        "without P-Asserted-Identity the caller is the From user"
    );
    // One call with a P-Asserted-Identity, passed on by the trusted proxy.
    let work = tempfile::tempdir().unwrap();
    let file = with_asserted_identity(work.path(), "proxy_call.xml", "+33123456789");
    let run = sipp::run(k.addr, &["-sf", &file, "-m", "1", "-d", "200"]);
    assert_ok(&run, &k, &[&a, &b]);
    let needle = [r#""message":"call started""#, r#""caller":"+33123456789""#];
    assert_eq!(a.count(&needle) + b.count(&needle), 1);
}

/// A copy of scenario `file` whose INVITE carries `P-Asserted-Identity: <sip:NUMBER@…>`;
/// returns its path.
fn with_asserted_identity(dir: &std::path::Path, file: &str, number: &str) -> String {
    let text = std::fs::read_to_string(scenario(file)).unwrap().replacen(
        "      Max-Forwards: 70\n",
        &format!(
            "      Max-Forwards: 70\n      P-Asserted-Identity: <sip:{number}@carrier.example>\n"
        ),
        1,
    );
    assert!(
        text.contains(number),
        "{file} has a Max-Forwards line to follow"
    );
    let path = dir.join(format!("pai_{file}"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The engine hangs up (demo: 2, then 9): its BYE carries the route set, goes to the proxy,
/// and reaches the caller (the scenario checks the proxy's Via on top of the engine's).
#[test]
fn the_engines_bye_goes_through_the_proxy() {
    let (a, b) = (Ivr::start(&[]), Ivr::start(&[]));
    let k = Kamailio::start(&[a.sip, b.sip], 1500);
    for tcp in [false, true] {
        let run = through(
            k.addr,
            "proxy_engine_bye.xml",
            &["-m", "2", "-r", "10", "-t", transport(tcp)],
        );
        assert_ok(&run, &k, &[&a, &b]);
    }
    let hangups = a.count(&["call ended", "MenuHangup"]) + b.count(&["call ended", "MenuHangup"]);
    assert_eq!(hangups, 4, "{}\n{}", a.log(), b.log());
}

/// A message left through the proxy is stored with the caller's number (From), not the
/// proxy's address nor a P-Asserted-Identity from an untrusted proxy; the log of the call
/// names the caller too.
#[test]
fn a_voicemail_left_through_the_proxy_keeps_the_callers_number() {
    let work = tempfile::tempdir().unwrap();
    // Half a second of tone as the message (raw µ-law for SIPp's rtp_stream).
    let tone = ivr_audio::tone::sine(8000, 440.0, 8000, 8000.0);
    let ulaw: Vec<u8> = tone
        .iter()
        .map(|s| ivr_audio::Codec::Pcmu.encode(*s))
        .collect();
    let audio = work.path().join("message.ulaw");
    std::fs::write(&audio, ulaw).unwrap();
    // A P-Asserted-Identity the engines must not believe: the proxy is not in their
    // --sip-trusted-proxy list.
    let template = std::fs::read_to_string(with_asserted_identity(
        work.path(),
        "voicemail.xml",
        "+19005550000",
    ))
    .unwrap();
    let text = sipp::follow_route_set(&template)
        .replace("@AUDIO@", &audio.display().to_string())
        .replace("@CALLER@", "+33612345678");
    let file = work.path().join("voicemail_proxy.xml");
    std::fs::write(&file, text).unwrap();

    let untrusted = ["--sip-trusted-proxy", "127.0.0.2"];
    let (a, b) = (Ivr::start(&untrusted), Ivr::start(&untrusted));
    let k = Kamailio::start(&[a.sip, b.sip], 1500);
    let run = sipp::run(
        k.addr,
        &["-sf", file.to_str().unwrap(), "-m", "1", "-d", "1000"],
    );
    assert_ok(&run, &k, &[&a, &b]);
    let engine = if started(&a) == 1 { &a } else { &b };
    assert_eq!(started(engine), 1);
    let stored = engine.wait_for(&["callback request stored"], 1, WAIT);
    assert_eq!(stored.len(), 1, "{}", engine.log());
    let call = engine.wait_for(&["call started"], 1, WAIT);
    assert!(
        call[0].contains(r#""caller":"+33612345678""#),
        "{}",
        call[0]
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = format!(
        "sqlite://{}",
        engine.data_dir().join("callbacks.db").display()
    );
    let requests = rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        store.list(&Filter::default()).await.unwrap()
    });
    assert_eq!(requests.len(), 1, "{requests:?}");
    let r = &requests[0].request;
    assert_eq!(r.caller_id.as_deref(), Some("+33612345678"));
    assert_eq!(r.callback_number.as_deref(), Some("0491234567"));
    assert!(r.has_message);
}

/// `kill -9` of one engine: the proxy fails over (no answer within its INVITE timeout, then
/// its OPTIONS probes mark the engine down) and the next 50 calls all succeed on the other.
#[test]
fn kill_9_of_one_engine_the_next_50_calls_succeed_on_the_other() {
    let (mut a, b) = (Ivr::start(&[]), Ivr::start(&[]));
    let k = Kamailio::start(&[a.sip, b.sip], 1500);
    // Both engines serve first.
    let run = through(
        k.addr,
        "proxy_call.xml",
        &["-m", "4", "-r", "10", "-d", "200"],
    );
    assert_ok(&run, &k, &[&a, &b]);
    assert!(started(&a) > 0 && started(&b) > 0);
    a.kill9();
    let before = started(&b);
    let run = through(
        k.addr,
        "proxy_call.xml",
        &["-m", "50", "-l", "20", "-r", "25", "-d", "200"],
    );
    assert_ok(&run, &k, &[&b]);
    assert_eq!(sipp::stat(&run.output, "Successful call"), Some(50));
    assert_eq!(sipp::stat(&run.output, "Failed call"), Some(0));
    assert_eq!(started(&b) - before, 50, "every call on the survivor");
}

/// SIGTERM of one engine with a drain time: it answers OPTIONS with 503, the proxy sends
/// new calls to the other engine, and its own calls go on until their callers hang up;
/// then it exits 0.
#[test]
fn sigterm_drains_one_engine_while_the_other_takes_new_calls() {
    let (mut a, b) = (
        Ivr::start(&["--drain-secs", "60"]),
        Ivr::start(&["--drain-secs", "60"]),
    );
    let k = Kamailio::start(&[a.sip, b.sip], 1500);
    assert_eq!(probe(a.sip), Some(200), "serving: OPTIONS 200");
    // Four long calls, spread over both engines.
    let target = k.addr;
    let long = std::thread::spawn(move || {
        through(
            target,
            "proxy_call.xml",
            &["-m", "4", "-l", "4", "-r", "20", "-d", "8000"],
        )
    });
    // Round robin gives each engine some of them; wait until all four are answered.
    let end = std::time::Instant::now() + WAIT;
    let answered = |e: &Ivr| e.count(&["\"answered\""]);
    while answered(&a) + answered(&b) < 4 {
        assert!(std::time::Instant::now() < end, "{}\n{}", a.log(), b.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let on_a = answered(&a);
    assert!(on_a > 0 && on_a < 4, "both engines have calls: {on_a} on a");
    a.signal("TERM");
    assert_eq!(a.wait_for(&["draining"], 1, WAIT).len(), 1, "{}", a.log());
    assert_eq!(probe(a.sip), Some(503), "draining: OPTIONS 503");
    let before = (started(&a), started(&b));
    let run = through(
        k.addr,
        "proxy_call.xml",
        &["-m", "10", "-r", "20", "-d", "200"],
    );
    assert_ok(&run, &k, &[&a, &b]);
    assert_eq!(
        started(&b) - before.1,
        10,
        "new calls go to the other engine"
    );
    assert_eq!(started(&a), before.0, "none to the draining one");
    // The long calls end as their callers hang up, the draining engine's included.
    let run = long.join().unwrap();
    assert_ok(&run, &k, &[&a, &b]);
    assert_eq!(sipp::stat(&run.output, "Successful call"), Some(4));
    let status = a.wait_exit(WAIT).expect("the drained engine exits");
    assert!(status.success(), "{status:?}\n{}", a.log());
    assert_eq!(
        a.count(&["call ended", "CallerHungUp"]),
        on_a,
        "{}",
        a.log()
    );
    assert_eq!(a.count(&["call ended", "Shutdown"]), 0);
}
