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

/// The Call-ID read for routing agrees with the parser on every RFC 4475 torture message and
/// on every input of the parser's fuzzing corpus (thousands of messages the fuzzer found
/// to reach new code: folding, compact forms, odd white space, broken heads).
#[test]
fn the_routing_read_agrees_with_the_parser_on_the_torture_messages_and_the_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for dir in [
        root.join("tests/data/rfc4475"),
        root.join("tests/data/rfc4475/errata-variants"),
        root.join("../../tests/fuzz/corpus/sip_parse"),
        root.join("tests/data/fuzz/sip_parse"),
    ] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                ivr_sip::fuzz::route_key(&std::fs::read(&path).unwrap());
                n += 1;
            }
        }
    }
    assert!(n > 1000, "only {n} inputs read");
}
