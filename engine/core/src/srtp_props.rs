//! Properties of the SRTP transform (RFC 3711) over random headers, sequence numbers and
//! tampering: round trips, authentication of every bit, replay refusal, the §3.3.1 index
//! estimate, one receive state per SSRC (§3.2.3) and the 2^48-packet limit.

use super::*;
use proptest::prelude::*;

/// An RTP packet (RFC 3550 §5.1): `csrcs` CSRCs, an extension of `ext` words if any,
/// `payload` bytes and `pad` bytes of padding (P bit set, count in the last byte).
#[derive(Debug, Clone)]
struct Shape {
    ssrc: u32,
    csrcs: u8,
    ext: Option<u8>,
    payload: Vec<u8>,
    pad: u8,
}

fn build(shape: &Shape, seq: u16) -> Vec<u8> {
    let mut p = vec![
        0x80 | (u8::from(shape.pad > 0) << 5) | (u8::from(shape.ext.is_some()) << 4) | shape.csrcs,
        0x08,
    ];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&0x0102_0304u32.to_be_bytes());
    p.extend_from_slice(&shape.ssrc.to_be_bytes());
    for i in 0..shape.csrcs {
        p.extend_from_slice(&(0xC0C0_0000 | u32::from(i)).to_be_bytes());
    }
    if let Some(words) = shape.ext {
        p.extend_from_slice(&[0xBE, 0xDE, 0, words]);
        p.extend((0..4 * usize::from(words)).map(|i| i as u8));
    }
    p.extend_from_slice(&shape.payload);
    if shape.pad > 0 {
        p.extend(std::iter::repeat_n(0, usize::from(shape.pad) - 1));
        p.push(shape.pad);
    }
    p
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        any::<u32>(),
        0u8..=15,
        proptest::option::of(0u8..=8),
        proptest::collection::vec(any::<u8>(), 0..200),
        0u8..=4,
    )
        .prop_map(|(ssrc, csrcs, ext, payload, pad)| Shape {
            ssrc,
            csrcs,
            ext,
            payload,
            pad,
        })
}

fn keys(seed: u8) -> (MasterKey, MasterKey) {
    let mut g = KeyGen::new(&KeySeed([seed; 32]));
    (g.next_key(), g.next_key())
}

/// Alice's packet `plain` with sequence number `seq` sent at ROC `roc`.
fn protect_at(alice: &mut SrtpSession, roc: u32, plain: &[u8]) -> Vec<u8> {
    alice.tx_roc = roc;
    alice.tx_last_seq = None;
    alice.tx_ssrc = None;
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + TAG_LEN, 0);
    let n = alice.protect(&mut buf, plain.len()).unwrap();
    buf.truncate(n);
    buf
}

/// Bob as if he had received Alice's stream `ssrc` up to index (`roc`, `seq`).
fn receiver_at(theirs: &MasterKey, ours: &MasterKey, ssrc: u32, roc: u32, seq: u16) -> SrtpSession {
    let mut bob = SrtpSession::new(ours, theirs);
    bob.rx_state[0] = Some(Receive {
        ssrc,
        roc,
        s_l: seq,
        window: 1,
    });
    bob
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Protect then unprotect gives the packet back; the header (CSRCs and extension
    /// included) stays in clear, what follows is encrypted (RFC 3711 §3.1).
    #[test]
    fn round_trip_any_header(s in shape(), seq in any::<u16>(), seed in any::<u8>()) {
        let (a, b) = keys(seed);
        let (mut alice, mut bob) = (SrtpSession::new(&a, &b), SrtpSession::new(&b, &a));
        let plain = build(&s, seq);
        let header_len = 12 + 4 * usize::from(s.csrcs) + s.ext.map_or(0, |w| 4 + 4 * usize::from(w));
        let sent = protect_at(&mut alice, 0, &plain);
        prop_assert_eq!(sent.len(), plain.len() + TAG_LEN);
        prop_assert_eq!(&sent[..header_len], &plain[..header_len]);
        if plain.len() - header_len >= 8 {
            prop_assert_ne!(&sent[header_len..plain.len()], &plain[header_len..]);
        }
        prop_assert_eq!(bob.unprotect(&sent).unwrap(), &plain[..]);
        prop_assert_eq!(bob.unprotect(&sent), Err(SrtpError::Replay));
    }

    /// Any single flipped bit (header, extension, payload, padding or tag) fails, and the
    /// failure leaves no trace: the genuine packet is still accepted after it.
    #[test]
    fn any_bit_flip_is_refused(s in shape(), seq in any::<u16>(), bit in any::<prop::sample::Index>()) {
        let (a, b) = keys(3);
        let (mut alice, mut bob) = (SrtpSession::new(&a, &b), SrtpSession::new(&b, &a));
        let plain = build(&s, seq);
        let sent = protect_at(&mut alice, 0, &plain);
        let bit = bit.index(sent.len() * 8);
        let mut bad = sent.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(bob.unprotect(&bad).is_err(), "bit {} accepted", bit);
        prop_assert_eq!(bob.unprotect(&sent).unwrap(), &plain[..]);
    }

    /// RFC 3711 §3.3.1 / Appendix A: from the highest index (`roc`, `s_l`), a packet up to
    /// 2^15 - 1 ahead is placed at the right index and accepted; one within the 64-packet
    /// window behind is accepted once; anything further behind is refused — across the
    /// sequence number's wrap either way.
    #[test]
    fn index_estimate_and_window(
        roc in 1u32..4,
        s_l in any::<u16>(),
        d in prop_oneof![-200i64..200, 32_700i64..32_800, -65_536i64..65_536],
    ) {
        prop_assume!(d != 0);
        let (a, b) = keys(9);
        let ssrc = 0x5151_5151;
        let mut alice = SrtpSession::new(&a, &b);
        let mut bob = receiver_at(&a, &b, ssrc, roc, s_l);
        let highest = (i64::from(roc) << 16) | i64::from(s_l);
        let index = highest + d;
        let s = Shape { ssrc, csrcs: 0, ext: None, payload: vec![7; 20], pad: 0 };
        let plain = build(&s, index as u16);
        let sent = protect_at(&mut alice, (index >> 16) as u32, &plain);
        let got = bob.unprotect(&sent).map(<[u8]>::to_vec);
        if (1..0x8000).contains(&d) || (-63..0).contains(&d) {
            prop_assert_eq!(got, Ok(plain));
            prop_assert_eq!(bob.unprotect(&sent), Err(SrtpError::Replay));
        } else if d <= -64 || d > 0x8000 {
            // Too old, or estimated in the wrong ROC (so its tag cannot match).
            prop_assert!(got.is_err(), "{:?}", got);
        }
    }

    /// Whatever arrives, nothing panics and nothing unauthenticated is accepted.
    #[test]
    fn garbage_is_refused(data in proptest::collection::vec(any::<u8>(), 0..1600)) {
        let (a, b) = keys(4);
        let mut bob = SrtpSession::new(&b, &a);
        prop_assert!(bob.unprotect(&data).is_err());
    }
}

/// RFC 3711 §3.2.3: each SSRC has its own ROC and replay window. A peer that changes SSRC
/// (its new stream's sequence numbers start anywhere, RFC 3550 §5.1) is heard, and both
/// streams keep their replay protection.
#[test]
fn a_second_ssrc_gets_its_own_receive_state() {
    let (a, b) = keys(5);
    let (mut alice, mut bob) = (SrtpSession::new(&a, &b), SrtpSession::new(&b, &a));
    let first = Shape {
        ssrc: 1,
        csrcs: 0,
        ext: None,
        payload: vec![1; 160],
        pad: 0,
    };
    let second = Shape {
        ssrc: 2,
        ..first.clone()
    };
    // The first stream is at 40,000; the second starts "behind" it at 100, then another
    // starts "ahead" (more than 2^15 from the first's highest).
    let p1 = protect_at(&mut alice, 0, &build(&first, 40_000));
    assert!(bob.unprotect(&p1).is_ok());
    let p2 = protect_at(&mut alice, 0, &build(&second, 100));
    assert_eq!(bob.unprotect(&p2).unwrap(), &build(&second, 100)[..]);
    let third = Shape {
        ssrc: 3,
        ..first.clone()
    };
    let p3 = protect_at(&mut alice, 0, &build(&third, 7_000));
    assert!(bob.unprotect(&p3).is_ok());
    // Each stream goes on, and replays of each are refused.
    let p1b = protect_at(&mut alice, 0, &build(&first, 40_001));
    assert!(bob.unprotect(&p1b).is_ok());
    let p2b = protect_at(&mut alice, 0, &build(&second, 101));
    assert!(bob.unprotect(&p2b).is_ok());
    for p in [&p1, &p2, &p3, &p1b, &p2b] {
        assert_eq!(bob.unprotect(p), Err(SrtpError::Replay));
    }
    // A forged packet for a new SSRC takes no slot.
    for ssrc in 100..200u32 {
        let mut forged = build(
            &Shape {
                ssrc,
                ..first.clone()
            },
            5,
        );
        forged.extend_from_slice(&[0; TAG_LEN]);
        assert_eq!(bob.unprotect(&forged), Err(SrtpError::Authentication));
    }
    // Up to RX_STREAMS streams; the next is refused rather than forgetting one (whose
    // recorded packets could then be replayed); a new key starts afresh.
    for ssrc in 4..=RX_STREAMS as u32 {
        let p = protect_at(
            &mut alice,
            0,
            &build(
                &Shape {
                    ssrc,
                    ..first.clone()
                },
                9,
            ),
        );
        assert!(bob.unprotect(&p).is_ok(), "{ssrc}");
    }
    let extra = Shape {
        ssrc: 99,
        ..first.clone()
    };
    let p = protect_at(&mut alice, 0, &build(&extra, 9));
    assert_eq!(bob.unprotect(&p), Err(SrtpError::TooManyStreams));
    assert_eq!(bob.unprotect(&p1), Err(SrtpError::Replay));
    let (c, _) = keys(6);
    let mut alice2 = SrtpSession::new(&c, &b);
    bob.set_inbound(&c);
    let p = protect_at(&mut alice2, 0, &build(&extra, 9));
    assert!(bob.unprotect(&p).is_ok());
    // The old key's packets no longer pass.
    assert_eq!(bob.unprotect(&p1b), Err(SrtpError::Authentication));
}

/// RFC 3711 §3.3.1: at most 2^48 packets under one key. The sender refuses to wrap its
/// ROC (which would repeat the keystream); the receiver never places a packet past it.
#[test]
fn no_more_than_2_pow_48_packets_per_key() {
    let (a, b) = keys(7);
    let mut alice = SrtpSession::new(&a, &b);
    let s = Shape {
        ssrc: 1,
        csrcs: 0,
        ext: None,
        payload: vec![0; 20],
        pad: 0,
    };
    alice.tx_roc = u32::MAX;
    alice.tx_last_seq = Some(0xFFFE);
    let mut buf = build(&s, 0xFFFF);
    let len = buf.len();
    buf.resize(len + TAG_LEN, 0);
    assert!(alice.protect(&mut buf, len).is_ok(), "the last index");
    let mut buf = build(&s, 0);
    buf.resize(len + TAG_LEN, 0);
    assert_eq!(alice.protect(&mut buf, len), Err(SrtpError::KeyExhausted));
    assert_eq!(alice.tx_roc, u32::MAX, "no wrap");
    // A receiver at the last ROC does not wrap to ROC 0 for a "later" packet.
    let mut bob = receiver_at(&a, &b, 1, u32::MAX, 0xFFF0);
    let mut wrapped = SrtpSession::new(&a, &b);
    let p = protect_at(&mut wrapped, 0, &build(&s, 5));
    assert!(bob.unprotect(&p).is_err());
    // And at ROC 0 no packet is placed "before" the first.
    let mut bob = receiver_at(&a, &b, 1, 0, 10);
    let p = protect_at(&mut wrapped, u32::MAX, &build(&s, 0xFFF0));
    assert_eq!(bob.unprotect(&p), Err(SrtpError::Replay));
}

/// Short or inconsistent packets are refused without a panic: under header + tag, CSRCs
/// or an extension running past the end, and more than [`MAX_PACKET`].
#[test]
fn short_and_inconsistent_packets() {
    let (a, b) = keys(8);
    let mut bob = SrtpSession::new(&b, &a);
    for len in 0..12 + TAG_LEN {
        assert_eq!(
            bob.unprotect(&vec![0x80; len]),
            Err(SrtpError::Malformed),
            "{len}"
        );
    }
    let mut p = vec![0u8; 12 + TAG_LEN + 8];
    p[0] = 0x8F; // 15 CSRCs: 60 bytes, not there
    assert_eq!(bob.unprotect(&p), Err(SrtpError::Malformed));
    p[0] = 0x90; // an extension whose length runs past the end
    p[12..16].copy_from_slice(&[0xBE, 0xDE, 0xFF, 0xFF]);
    assert_eq!(bob.unprotect(&p), Err(SrtpError::Malformed));
    assert_eq!(
        bob.unprotect(&vec![0x80; MAX_PACKET + 1]),
        Err(SrtpError::Malformed)
    );
    let mut alice = SrtpSession::new(&a, &b);
    let mut small = [0x80u8; 12 + TAG_LEN - 1];
    assert_eq!(alice.protect(&mut small, 12), Err(SrtpError::NoRoom));
}

/// A session sends one stream: a second SSRC is refused instead of being counted into the
/// first one's ROC (RFC 3711 §3.2.3; a new stream must start at ROC 0).
#[test]
fn one_outbound_stream_per_session() {
    let (a, b) = keys(10);
    let mut alice = SrtpSession::new(&a, &b);
    let s = Shape {
        ssrc: 1,
        csrcs: 0,
        ext: None,
        payload: vec![0; 20],
        pad: 0,
    };
    let mut p = build(&s, 40_000);
    let len = p.len();
    p.resize(len + TAG_LEN, 0);
    assert!(alice.protect(&mut p, len).is_ok());
    let mut q = build(&Shape { ssrc: 2, ..s }, 100);
    q.resize(len + TAG_LEN, 0);
    assert_eq!(alice.protect(&mut q, len), Err(SrtpError::TooManyStreams));
    assert_eq!(alice.tx_roc, 0, "the first stream's ROC untouched");
}
