//! Inputs the fuzzers once crashed on, kept as regression tests.

fn check_dir(dir: &str, body: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz")
        .join(dir);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        body(&std::fs::read(&path).unwrap());
        n += 1;
    }
    assert!(n > 0, "no regression inputs in {}", dir.display());
}

#[test]
fn parser_round_trip_regressions() {
    check_dir("sip_parse", ivr_sip::fuzz::parse_datagram);
}

#[test]
fn framing_regressions() {
    check_dir("tcp_framing", ivr_sip::fuzz::stream);
}
