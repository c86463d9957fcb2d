//! What a new user meets first, black box: the real `ivr` binary, its messages and exit
//! codes, one test per rough edge found by trying it as a newcomer would (issue 13).

use ivr_tests::process::Ivr;
use ivr_tests::sipp;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// Only a hand-off the engine cannot run yet (a queue) warns, as the call is ended; a
/// voicemail call logs no warning (checked on the call `reload.rs` places with its data
/// folder inside the config's folder, which saves a second call here).
#[test]
fn a_hand_off_to_a_service_not_run_yet_warns() {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("queue.yaml");
    std::fs::write(
        &config,
        "entry: main\nprompts:\n  hi: { silence: 1 }\nqueues:\n  q: {}\nmenus:\n  main:\n    prompt: hi\n    options:\n      \"9\": { queue: q }\n",
    )
    .unwrap();
    let ivr = Ivr::start(&["--config", config.to_str().unwrap()]);
    // The engine hangs up while SIPp still waits to send its BYE: its exit code says nothing.
    sipp::run(
        ivr.sip,
        &["-sf", sipp::scenario("press_nine.xml"), "-m", "1"],
    );
    let warned = ivr.wait_for(&["does not run yet", "\"level\":\"WARN\""], 1, WAIT);
    assert_eq!(warned.len(), 1, "{}", ivr.log());
    assert!(warned[0].contains("\"to\":\"queue q\""), "{}", warned[0]);
    assert!(ivr.log().contains("left the menus"), "{}", ivr.log());
}
