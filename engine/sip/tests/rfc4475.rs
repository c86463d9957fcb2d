//! The RFC 4475 torture messages, byte-exact, against the parser and the 400/505 builder.
//!
//! Each row states what this parser does with the message; `INDEX.csv` (copied from the
//! RFC) says what is acceptable, and the test also checks our verdict is one of those.

use ivr_sip::parse::{Framing, error_response, parse_message};
use std::path::Path;

/// What we do with a message.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Parsed; the engine takes it from there.
    Parse,
    /// Refused, and answered with this status.
    Answer(u16),
    /// Refused with no answer (a broken response, or no headers to address a reply).
    Drop,
}
use Verdict::*;

const EXPECTED: &[(&str, Verdict)] = &[
    ("wsinv.dat", Parse),
    ("intmeth.dat", Parse),
    ("esc01.dat", Parse),
    ("escnull.dat", Parse),
    ("esc02.dat", Parse),
    ("lwsdisp.dat", Parse),
    ("longreq.dat", Parse),
    ("dblreq.dat", Parse),
    ("semiuri.dat", Parse),
    ("transports.dat", Parse),
    ("mpart01.dat", Parse),
    ("unreason.dat", Parse),
    ("noreason.dat", Parse),
    ("badinv01.dat", Answer(400)),
    ("clerr.dat", Answer(400)),
    ("ncl.dat", Answer(400)),
    ("scalar02.dat", Answer(400)),
    ("scalarlg.dat", Drop),
    ("quotbal.dat", Answer(400)),
    ("ltgtruri.dat", Answer(400)),
    ("lwsruri.dat", Answer(400)),
    ("lwsstart.dat", Answer(400)),
    ("trws.dat", Answer(400)),
    ("escruri.dat", Parse),
    ("baddate.dat", Parse),
    ("regbadct.dat", Parse),
    ("badaspec.dat", Answer(400)),
    ("baddn.dat", Answer(400)),
    ("badvers.dat", Answer(505)),
    ("mismatch01.dat", Answer(400)),
    ("mismatch02.dat", Answer(400)),
    ("bigcode.dat", Drop),
    ("badbranch.dat", Parse),
    ("insuf.dat", Answer(400)),
    ("unkscm.dat", Parse),
    ("novelsc.dat", Parse),
    ("unksm2.dat", Parse),
    ("bext01.dat", Parse),
    ("invut.dat", Parse),
    ("regaut01.dat", Parse),
    ("multi01.dat", Answer(400)),
    ("mcl01.dat", Answer(400)),
    ("bcast.dat", Parse),
    ("zeromf.dat", Parse),
    ("cparam01.dat", Parse),
    ("cparam02.dat", Parse),
    ("regescrt.dat", Parse),
    ("sdp01.dat", Parse),
    ("inv2543.dat", Parse),
    ("test.dat", Drop),
];

fn verdict(bytes: &[u8]) -> Verdict {
    match parse_message(bytes, Framing::Datagram) {
        Ok(_) => Parse,
        Err(e) => match error_response(&e) {
            Some(r) => Answer(r.status.code()),
            None => Drop,
        },
    }
}

#[test]
fn every_torture_message_gets_the_expected_verdict() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rfc4475");
    let index = std::fs::read_to_string(dir.join("INDEX.csv")).unwrap();
    let mut seen = 0;
    for line in index.lines().skip(1) {
        let mut cols = line.split(',');
        let file = cols.next().unwrap();
        let rfc_verdict = line.split(',').nth(4).unwrap_or_default();
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let (_, ours) = EXPECTED
            .iter()
            .find(|(f, _)| *f == file)
            .unwrap_or_else(|| panic!("{file} not in table"));
        let got = verdict(&bytes);
        assert_eq!(&got, ours, "{file}");
        // A message the RFC says must be rejected is never accepted.
        if rfc_verdict == "must_reject" {
            assert_ne!(got, Parse, "{file} must be rejected");
        }
        seen += 1;
    }
    assert_eq!(seen, EXPECTED.len());
}

#[test]
fn dblreq_ignores_the_trailing_invite() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rfc4475");
    let m = parse_message(
        &std::fs::read(dir.join("dblreq.dat")).unwrap(),
        Framing::Datagram,
    )
    .unwrap();
    match m {
        ivr_sip::Message::Request(r) => {
            assert_eq!(r.method, ivr_sip::Method::Register);
            assert!(r.body.is_empty());
        }
        _ => panic!("not a request"),
    }
}

#[test]
fn mpart01_body_is_framed_by_content_length() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rfc4475");
    let bytes = std::fs::read(dir.join("mpart01.dat")).unwrap();
    let m = parse_message(&bytes, Framing::Stream).unwrap();
    let declared: usize = String::from_utf8_lossy(&bytes)
        .lines()
        .find_map(|l| {
            l.strip_prefix("Content-Length: ")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap();
    assert!(m.to_bytes().len() > declared);
    match m {
        ivr_sip::Message::Request(r) => assert_eq!(r.body.len(), declared),
        _ => panic!("not a request"),
    }
}
