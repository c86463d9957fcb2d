//! Call-center queues under load, black box: the real `ivr` binary on 127.0.0.1, a queue
//! worked by SIPp agents, and 100 SIPp callers who press 1 to join it and stream a known
//! recording until the engine hangs up.
//!
//! The agents are **static** agents (`uri:` at each SIPp UAS's address), one SIPp process
//! each (`queue_agent_load.xml`): registering them from three SIPp processes would test the
//! registrar again (`queue_sipp.rs` does) and not the queue. Under ring-all every free phone
//! rings; they answer after 200, 500 and 800 ms, so the first wins and the others get
//! CANCEL (200 and 487 from SIPp). An agent talks one second, then hangs up. Callers nobody
//! answered within `max_wait` (10 s) are hung up by the queue's `on_timeout`. Each agent's
//! media port is a socket of this test, which checks the agents hear the callers' recording.
//!
//! Afterwards: every caller was bridged or timed out, no agent is left ringing or on a call
//! (`ivr_agents{state}`), nobody waits (`ivr_queue_waiting`), and `ivr queues report --json`
//! counts what the engine's log says happened.
//!
//! `bench/queues.sh` runs the same code with more calls, more agents and round-robin (the
//! `QUEUE_LOAD_*` variables below) against a release build, and prints what it measured.

use ivr_tests::http;
use ivr_tests::process::{Ivr, run};
use ivr_tests::sipp::{self, scenario};
use std::collections::HashSet;
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What to run: the test's defaults, or `QUEUE_LOAD_*` from the environment (the bench).
struct Plan {
    calls: u32,
    agents: usize,
    strategy: String,
    /// Callers per second.
    rate: u32,
    /// How long an agent talks before hanging up.
    talk_ms: u64,
    max_wait: u64,
    /// Print the figures (the bench).
    print: bool,
}

impl Plan {
    fn from_env() -> Plan {
        let var = |name: &str, default: &str| {
            std::env::var(format!("QUEUE_LOAD_{name}")).unwrap_or_else(|_| default.to_string())
        };
        Plan {
            calls: var("CALLS", "100").parse().expect("QUEUE_LOAD_CALLS"),
            agents: var("AGENTS", "3").parse().expect("QUEUE_LOAD_AGENTS"),
            strategy: var("STRATEGY", "ring_all"),
            rate: var("RATE", "10").parse().expect("QUEUE_LOAD_RATE"),
            talk_ms: var("TALK_MS", "1000").parse().expect("QUEUE_LOAD_TALK_MS"),
            max_wait: var("MAX_WAIT", "10").parse().expect("QUEUE_LOAD_MAX_WAIT"),
            print: std::env::var_os("QUEUE_LOAD_PRINT").is_some(),
        }
    }
}

/// The callers' recording: 2 s of a tone whose pitch rises, so no two 20 ms frames match
/// and none is silence; 100 whole frames, so a looped stream stays frame-aligned.
fn recording() -> Vec<i16> {
    (0..16_000)
        .map(|i| {
            let t = i as f64 / 8000.0;
            let f = 300.0 + 250.0 * t;
            (6000.0 * (2.0 * std::f64::consts::PI * f * t).sin() + 700.0) as i16
        })
        .collect()
}

/// One agent's media socket, read in the background: how many PCMU packets with sound
/// arrived (silence aside: what a bridge sends while the caller's stream has a gap) and how
/// many of them are frames of the recording.
struct Ear {
    handle: JoinHandle<(u64, u64)>,
}

fn listen(socket: UdpSocket, frames: Arc<HashSet<Vec<u8>>>, stop: Arc<AtomicBool>) -> Ear {
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let handle = std::thread::spawn(move || {
        let (mut packets, mut known) = (0u64, 0u64);
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((n, _)) = socket.recv_from(&mut buf)
                && n > 12
                && buf[1] & 0x7F == 0
                && buf[12..n].iter().any(|b| *b != 0xFF && *b != 0x7F)
            {
                packets += 1;
                known += u64::from(frames.contains(&buf[12..n]));
            }
        }
        (packets, known)
    });
    Ear { handle }
}

/// Utime + stime of process `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').expect("stat") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let hz = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0);
    ticks / hz
}

/// The value of a metric line `name` in `/metrics` text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
}

#[test]
fn a_hundred_callers_through_a_ring_all_queue_of_three_sipp_agents() {
    let plan = Plan::from_env();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let pcm = recording();
    let audio = dir.path().join("caller.ulaw");
    sipp::ulaw_message(&audio, &pcm);
    let frames: Arc<HashSet<Vec<u8>>> = Arc::new(
        pcm.chunks(160)
            .map(|c| {
                c.iter()
                    .map(|s| ivr_audio::Codec::Pcmu.encode(*s))
                    .collect()
            })
            .collect(),
    );

    // The agents: a SIPp UAS each, answering with a media socket of ours.
    let stop = Arc::new(AtomicBool::new(false));
    let template = std::fs::read_to_string(scenario("queue_agent_load.xml")).unwrap();
    let mut phones = Vec::new();
    let mut ears = Vec::new();
    let mut agents_yaml = String::new();
    for i in 0..plan.agents {
        let media = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Ring-all: staggered answers, so one phone wins and the others are cancelled.
        let answer_ms = if plan.strategy == "ring_all" {
            200 + 300 * i
        } else {
            300
        };
        let text = template
            .replace(
                "@MEDIA_PORT@",
                &media.local_addr().unwrap().port().to_string(),
            )
            .replace("@ANSWER_MS@", &answer_ms.to_string())
            .replace("@TALK_MS@", &plan.talk_ms.to_string());
        let path = dir.path().join(format!("agent{i}.xml"));
        std::fs::write(&path, text).unwrap();
        let uas = sipp::spawn_uas(&["-sf", path.to_str().unwrap(), "-timeout", "600s"]);
        agents_yaml.push_str(&format!(
            "  agent{i}:\n    uri: \"sip:agent{i}@{}\"\n    queues: {{ sales: }}\n",
            uas.addr
        ));
        phones.push(uas);
        ears.push(listen(media, frames.clone(), stop.clone()));
    }
    let config = dir.path().join("queue.yaml");
    std::fs::write(
        &config,
        format!(
            "entry: main\nprompts:\n  hi: {{ silence: 1 }}\nqueues:\n  sales:\n    strategy: {}\n    max_wait: {}\n    agent_timeout: 5\n    announce_every: 60\nmenus:\n  main:\n    prompt: hi\n    timeout: 10\n    options:\n      \"1\": {{ queue: sales }}\nagents:\n{agents_yaml}",
            plan.strategy, plan.max_wait
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let ivr = Ivr::start_in(&data, &["--config", config.to_str().unwrap()]);
    let metrics_addr = ivr.http.expect("http");
    let cpu_before = cpu_seconds(ivr.pid());

    // The callers.
    let caller = std::fs::read_to_string(scenario("queue_caller.xml"))
        .unwrap()
        .replace("@AUDIO@", audio.to_str().unwrap());
    let caller_path = dir.path().join("queue_caller.xml");
    std::fs::write(&caller_path, caller).unwrap();
    let calls = plan.calls.to_string();
    let rate = plan.rate.to_string();
    // Killed after the arrivals, the longest wait and a talk, with a minute to spare.
    let limit = plan.calls / plan.rate.max(1) + plan.max_wait as u32 + 60;
    let callers = sipp::run_for(
        ivr.sip,
        &[
            "-sf",
            caller_path.to_str().unwrap(),
            "-m",
            &calls,
            "-r",
            &rate,
            "-l",
            &calls,
            "-timeout",
            "600s",
        ],
        limit,
    );
    let cpu_after = cpu_seconds(ivr.pid());
    assert_eq!(
        sipp::stat(&callers.output, "Successful call"),
        Some(u64::from(plan.calls)),
        "every caller was hung up by the engine:\n{}\n{}",
        callers.output,
        ivr.log()
    );

    // Nobody stuck: every agent available again, nobody waiting.
    let end = Instant::now() + Duration::from_secs(15);
    let metrics = loop {
        let m = http::get(metrics_addr, "/metrics").text();
        let available = metric(&m, "ivr_agents{state=\"available\"}");
        if available == Some(plan.agents as f64) || Instant::now() > end {
            break m;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for (state, want) in [
        ("available", plan.agents as f64),
        ("ringing", 0.0),
        ("on_call", 0.0),
        ("paused", 0.0),
        ("logged_out", 0.0),
    ] {
        assert_eq!(
            metric(&metrics, &format!("ivr_agents{{state=\"{state}\"}}")),
            Some(want),
            "{state}:\n{metrics}"
        );
    }
    assert_eq!(
        metric(&metrics, "ivr_queue_waiting{queue=\"sales\"}"),
        Some(0.0),
        "{metrics}"
    );

    // What the log says happened.
    let joined = ivr.count(&["queue: caller joined"]) as u64;
    let bridged = ivr.count(&["agent answered: bridged"]) as u64;
    let timed_out = ivr.count(&["queue: max wait reached"]) as u64;
    assert_eq!(joined, u64::from(plan.calls), "{}", ivr.log());
    assert_eq!(
        bridged + timed_out,
        u64::from(plan.calls),
        "every caller bridged ({bridged}) or timed out ({timed_out})"
    );
    assert!(
        bridged > 0,
        "some callers were served; agents:\n{}\nlog:\n{}",
        phones
            .iter()
            .map(|p| p.output())
            .collect::<Vec<_>>()
            .join("\n"),
        ivr.log()
            .lines()
            .filter(|l| l.contains("agent"))
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The report agrees (its rows are written off the loop: wait for the last).
    let data_dir = data.to_str().unwrap();
    let report = || {
        let (code, out, err) = run(
            dir.path(),
            &["queues", "report", "--json", "--data-dir", data_dir],
            "",
        );
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let end = Instant::now() + Duration::from_secs(15);
    let mut r = report();
    // The engine writes the log in rounds: wait until every caller's outcome is in it.
    let written = |r: &serde_json::Value| {
        let q = &r["queues"][0];
        q["completed"].as_u64() == Some(bridged)
            && q["timed_out"].as_u64() == Some(timed_out)
            && q["entered"].as_u64() == Some(u64::from(plan.calls))
    };
    while !written(&r) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
        r = report();
    }
    let q = &r["queues"][0];
    assert_eq!(q["queue"], "sales", "{r}");
    assert_eq!(q["entered"].as_u64(), Some(u64::from(plan.calls)), "{r}");
    assert_eq!(q["answered"].as_u64(), Some(bridged), "{r}");
    assert_eq!(q["completed"].as_u64(), Some(bridged), "{r}");
    assert_eq!(q["timed_out"].as_u64(), Some(timed_out), "{r}");
    assert_eq!(q["abandoned"].as_u64(), Some(0), "{r}");
    let agents = r["agents"].as_array().expect("agents");
    let answered: u64 = agents.iter().filter_map(|a| a["answered"].as_u64()).sum();
    assert_eq!(answered, bridged, "{r}");
    let talk_ms: u64 = agents.iter().filter_map(|a| a["talk_ms"].as_u64()).sum();

    // The agents heard the callers' recording.
    stop.store(true, Ordering::Relaxed);
    let heard: Vec<(u64, u64)> = ears.into_iter().map(|e| e.handle.join().unwrap()).collect();
    let (packets, known) = heard.iter().fold((0, 0), |(p, k), (a, b)| (p + a, k + b));
    assert!(
        packets >= bridged * 20,
        "{packets} packets reached the agents for {bridged} bridged calls"
    );
    assert!(
        known * 100 >= packets * 95,
        "{known} of {packets} packets the agents got are the callers' recording"
    );

    if plan.print {
        println!(
            "queue load: {} calls at {}/s over {} agents ({}), talk {} ms, max wait {} s",
            plan.calls, plan.rate, plan.agents, plan.strategy, plan.talk_ms, plan.max_wait
        );
        println!("bridged {bridged}, timed out {timed_out}");
        for (a, (p, k)) in agents.iter().zip(&heard) {
            println!(
                "  {}: offers {}, answered {}, talk {:.1} s, RTP packets heard {p} ({k} of the recording)",
                a["agent"].as_str().unwrap_or("?"),
                a["offers"],
                a["answered"],
                a["talk_ms"].as_u64().unwrap_or(0) as f64 / 1000.0
            );
        }
        println!(
            "report: entered {}, answered {}, service level {:.1}% (answered within {} s), abandoned {} (rate {:.1}%), timed out {}, average wait {} ms, longest wait {} ms",
            q["entered"],
            q["answered"],
            q["service_level_percent"].as_f64().unwrap_or(0.0),
            r["service_level_threshold_s"],
            q["abandoned"],
            q["abandon_rate_percent"].as_f64().unwrap_or(0.0),
            q["timed_out"],
            q["average_wait_ms"],
            q["longest_wait_ms"]
        );
        let cpu = cpu_after - cpu_before;
        let talk = talk_ms as f64 / 1000.0;
        println!(
            "engine CPU {cpu:.2} s (user+system, whole run: menus, music for waiting callers, ringing, bridges) for {talk:.1} bridged call-seconds: {:.2} ms CPU per bridged call-second; wall {:.1} s",
            1000.0 * cpu / talk.max(0.001),
            started.elapsed().as_secs_f64()
        );
    }
    drop(phones);
}
