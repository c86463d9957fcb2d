//! The RFC 4475 torture messages, byte-exact, against the parser and the 400/505 builder.
//!
//! Each row states what this parser does with the message and, when it refuses one, why:
//! the parser's error kind, so a message refused for the wrong reason (say, a framing
//! fault instead of the rule the message tests) fails here. `INDEX.csv` (copied from the
//! RFC) says what is acceptable, and the test also checks our verdict is one of those.
//! The files are checked against `SHA256SUMS` and the index's sizes and hashes first, and
//! the corrected copies in `errata-variants/` get rows of their own.

use ivr_sip::parse::{Framing, error_response, parse_message};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// What we do with a message.
#[derive(Debug, PartialEq)]
enum Verdict<S> {
    /// Parsed; the engine takes it from there.
    Parse,
    /// Refused, and answered with this status, because of this error (the `Debug` form of
    /// the parser's `ParseErrorKind`).
    Answer(u16, S),
    /// Refused with no answer (a broken response, or no headers to address a reply),
    /// because of this error.
    Drop(S),
}
use Verdict::*;

/// One line per message: a changed verdict is a one-line edit here.
#[rustfmt::skip]
const EXPECTED: &[(&str, Verdict<&str>)] = &[
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
    ("badinv01.dat", Answer(400, r#"Header(Malformed { name: Via, reason: "empty parameter" })"#)),
    ("clerr.dat", Answer(400, "BodyTooShort { declared: 9999, got: 154 }")),
    ("ncl.dat", Answer(400, r#"ContentLength("is not a single decimal number")"#)),
    ("scalar02.dat", Answer(400, r#"Header(Malformed { name: CSeq, reason: "sequence number is not below 2^31" })"#)),
    ("scalarlg.dat", Drop(r#"Header(Malformed { name: CSeq, reason: "sequence number is not below 2^31" })"#)),
    ("quotbal.dat", Answer(400, r#"Header(Malformed { name: To, reason: "unterminated quoted display name" })"#)),
    ("ltgtruri.dat", Answer(400, "RequestUri(NoScheme)")),
    ("lwsruri.dat", Answer(400, r#"StartLine("request line is not 'METHOD SP URI SP SIP/2.0'")"#)),
    ("lwsstart.dat", Answer(400, r#"StartLine("request line is not 'METHOD SP URI SP SIP/2.0'")"#)),
    ("trws.dat", Answer(400, r#"StartLine("request line is not 'METHOD SP URI SP SIP/2.0'")"#)),
    ("escruri.dat", Parse),
    ("baddate.dat", Parse),
    ("regbadct.dat", Parse),
    ("badaspec.dat", Answer(400, r#"Header(Malformed { name: To, reason: "bad URI" })"#)),
    // The archive's copy lacks its final empty line: the parser refuses it at its last
    // header line (9) for that, before it reaches the display-name rule the message
    // tests. The corrected copy below is refused for that rule.
    ("baddn.dat", Answer(400, "HeaderLine(9)")),
    ("errata-variants/baddn.crlf-terminated.dat", Answer(400, r#"Header(Malformed { name: From, reason: "display name has characters outside token" })"#)),
    ("badvers.dat", Answer(505, r#"Version("7.0")"#)),
    ("mismatch01.dat", Answer(400, r#"CSeqMismatch { method: "OPTIONS", cseq: "INVITE" }"#)),
    ("mismatch02.dat", Answer(400, r#"CSeqMismatch { method: "NEWMETHOD", cseq: "INVITE" }"#)),
    ("bigcode.dat", Drop(r#"StartLine("status code is not three digits")"#)),
    ("badbranch.dat", Parse),
    // A 400 naming every missing header (issue 7).
    ("insuf.dat", Answer(400, r#"MissingHeaders(["Call-ID", "From", "To"])"#)),
    ("unkscm.dat", Parse),
    ("novelsc.dat", Parse),
    ("unksm2.dat", Parse),
    ("bext01.dat", Parse),
    ("invut.dat", Parse),
    ("regaut01.dat", Parse),
    ("multi01.dat", Answer(400, "Header(Repeated(From))")),
    ("mcl01.dat", Answer(400, r#"ContentLength("is not a single decimal number")"#)),
    ("bcast.dat", Parse),
    ("zeromf.dat", Parse),
    ("cparam01.dat", Parse),
    ("cparam02.dat", Parse),
    ("regescrt.dat", Parse),
    // The parser parses it; the engine answers 406 (tests/tests/proxy_calls.rs).
    ("sdp01.dat", Parse),
    ("inv2543.dat", Parse),
    ("test.dat", Drop("HeaderLine(9)")),
];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rfc4475")
}

fn verdict(bytes: &[u8]) -> Verdict<String> {
    match parse_message(bytes, Framing::Datagram) {
        Ok(_) => Parse,
        Err(e) => {
            let kind = format!("{:?}", e.kind);
            match error_response(&e) {
                Some(r) => Answer(r.status.code(), kind),
                None => Drop(kind),
            }
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The copied messages are the RFC's, byte for byte: every file `SHA256SUMS` lists has
/// that hash, and the size and hash `INDEX.csv` gives; the corrected copy of baddn is the
/// original plus the missing empty line, nothing else.
#[test]
fn the_messages_are_the_rfcs_byte_for_byte() {
    let dir = dir();
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    let mut checked = 0;
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (hash, file) = line.split_once("  ").expect("`HASH  FILE` lines");
        let bytes = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(sha256_hex(&bytes), hash, "{file} differs from SHA256SUMS");
        checked += 1;
    }
    let index = std::fs::read_to_string(dir.join("INDEX.csv")).unwrap();
    let mut indexed = 0;
    for line in index.lines().skip(1) {
        let file = line.split(',').next().unwrap();
        // The last two columns (the title may hold quoted commas): size, then hash.
        let mut tail = line.rsplit(',');
        let hash = tail.next().unwrap();
        let size: usize = tail.next().unwrap().parse().unwrap();
        let bytes = std::fs::read(dir.join(file)).unwrap();
        assert_eq!(bytes.len(), size, "{file}: size differs from INDEX.csv");
        assert_eq!(
            sha256_hex(&bytes),
            hash,
            "{file}: hash differs from INDEX.csv"
        );
        assert!(
            sums.contains(&format!("{hash}  {file}")),
            "{file} missing from SHA256SUMS"
        );
        indexed += 1;
    }
    assert_eq!(
        checked, indexed,
        "SHA256SUMS and INDEX.csv list the same files"
    );
    assert_eq!(
        checked,
        EXPECTED.len() - 1,
        "one row per file, plus the errata copy"
    );
    let original = std::fs::read(dir.join("baddn.dat")).unwrap();
    let corrected = std::fs::read(dir.join("errata-variants/baddn.crlf-terminated.dat")).unwrap();
    assert_eq!(corrected, [&original[..], b"\r\n"].concat());
}

#[test]
fn every_torture_message_gets_the_expected_verdict() {
    let dir = dir();
    let index = std::fs::read_to_string(dir.join("INDEX.csv")).unwrap();
    let rfc_verdict = |file: &str| -> String {
        // The errata copy is judged as the message it corrects.
        let file = file.trim_start_matches("errata-variants/");
        let file = file.replace(".crlf-terminated", "");
        index
            .lines()
            .find(|l| l.starts_with(&format!("{file},")))
            .and_then(|l| l.split(',').nth(4))
            .unwrap_or_else(|| panic!("{file} not in INDEX.csv"))
            .to_string()
    };
    let mut files: Vec<String> = index
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    for entry in std::fs::read_dir(dir.join("errata-variants")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        files.push(format!("errata-variants/{name}"));
    }
    let mut wrong = Vec::new();
    for file in &files {
        let (_, ours) = EXPECTED
            .iter()
            .find(|(f, _)| f == file)
            .unwrap_or_else(|| panic!("{file} not in table"));
        let got = verdict(&std::fs::read(dir.join(file)).unwrap());
        let expected = match ours {
            Parse => Parse,
            Answer(code, kind) => Answer(*code, kind.to_string()),
            Drop(kind) => Drop(kind.to_string()),
        };
        if got != expected {
            wrong.push(format!("{file}: expected {expected:?}, got {got:?}"));
        }
        // A message the RFC says must be rejected is never accepted.
        if rfc_verdict(file) == "must_reject" {
            assert_ne!(got, Parse, "{file} must be rejected");
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(files.len(), EXPECTED.len(), "every row names a file");
}

#[test]
fn dblreq_ignores_the_trailing_invite() {
    let dir = dir();
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
    let bytes = std::fs::read(dir().join("mpart01.dat")).unwrap();
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
