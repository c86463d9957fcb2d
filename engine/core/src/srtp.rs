//! SRTP (RFC 3711) with SDES keys (RFC 4568): the `AES_CM_128_HMAC_SHA1_80` suite only.
//!
//! Packets are transformed in place or into a buffer the session owns, so protecting and
//! unprotecting never allocate. Built on RustCrypto's `aes`, `ctr`, `hmac` and `sha1`: the
//! pure-Rust SRTP crates found return a new buffer per packet (webrtc-srtp) or bind the C
//! libsrtp; the transform itself is small and checked against RFC 3711's test vectors and
//! against baresip (libsrtp) in the black-box tests.
//!
//! Tested subset and non-goals: one crypto suite; no MKI, no key lifetime enforcement
//! (a call never comes near 2^31 packets; the 2^48 limit of RFC 3711 §3.3.1 is kept),
//! key derivation rate 0; SRTCP is not produced or checked (RTCP only proves liveness
//! here, see `MediaSession::handle_rtcp`). Each of the peer's SSRCs has its own receive
//! state (RFC 3711 §3.2.3), up to a fixed number per key.
//!
//! Key material never appears in `Debug` output or logs.

use aes::Aes128;
use aes::cipher::{KeyIvInit, StreamCipher};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

type Aes128Ctr = ctr::Ctr128BE<Aes128>;
type HmacSha1 = Hmac<Sha1>;

/// The one crypto suite offered and accepted (RFC 4568 §6.2.1).
pub const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";
/// The authentication tag's length for the suite (80 bits, RFC 3711 §5.2).
pub const TAG_LEN: usize = 10;
/// The largest SRTP packet accepted (the rest are dropped): a UDP payload on an Ethernet path.
pub const MAX_PACKET: usize = 1500;
/// Master key length (RFC 3711 §8.2: 128 bits).
const KEY_LEN: usize = 16;
/// Master salt length (112 bits).
const SALT_LEN: usize = 14;

/// Why a packet or a key could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// Shorter than an RTP header plus the tag, longer than [`MAX_PACKET`], or a header
    /// whose CSRCs or extension run past the end.
    #[error("not an SRTP packet")]
    Malformed,
    /// The authentication tag does not match (RFC 3711 §3.3 step 5).
    #[error("SRTP authentication failed")]
    Authentication,
    /// Seen before, or too old for the replay window (RFC 3711 §3.3.2).
    #[error("SRTP replay")]
    Replay,
    /// A buffer without room for the tag.
    #[error("no room for the SRTP tag")]
    NoRoom,
    /// An `inline:` key that is not base64 of 30 bytes.
    #[error("unusable SDES key")]
    BadKey,
    /// 2^48 packets were protected with this key (RFC 3711 §3.3.1): a new one is needed.
    #[error("SRTP key used up")]
    KeyExhausted,
    /// A stream (SSRC) beyond the [`RX_STREAMS`] this key already carries, or a second
    /// SSRC to protect (a session sends one stream).
    #[error("too many SRTP streams under one key")]
    TooManyStreams,
}

/// A master key and salt (RFC 3711 §3.2.1), as carried in an SDES `inline:` parameter.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    key: [u8; KEY_LEN],
    salt: [u8; SALT_LEN],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// The key from an `inline:` value's base64 (RFC 4568 §6.1: key || salt).
    pub fn from_base64(b64: &str) -> Result<MasterKey, SrtpError> {
        let engine = base64::engine::general_purpose::STANDARD;
        let bytes = engine.decode(b64).map_err(|_| SrtpError::BadKey)?;
        if bytes.len() != KEY_LEN + SALT_LEN {
            return Err(SrtpError::BadKey);
        }
        let mut key = [0; KEY_LEN];
        let mut salt = [0; SALT_LEN];
        key.copy_from_slice(&bytes[..KEY_LEN]);
        salt.copy_from_slice(&bytes[KEY_LEN..]);
        Ok(MasterKey { key, salt })
    }

    /// The `inline:` value's base64 (key || salt).
    pub fn to_base64(&self) -> String {
        let mut bytes = [0u8; KEY_LEN + SALT_LEN];
        bytes[..KEY_LEN].copy_from_slice(&self.key);
        bytes[KEY_LEN..].copy_from_slice(&self.salt);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }
}

/// A secret seed for [`KeyGen`], given by the driver from the operating system's randomness.
#[derive(Clone, Default)]
pub struct KeySeed(pub [u8; 32]);

impl std::fmt::Debug for KeySeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySeed(..)")
    }
}

/// Our master keys: AES-128 in counter mode over a secret seed (a CTR_DRBG without
/// reseeding, NIST SP 800-90A §10.2 in spirit). The engine reads no OS randomness; the
/// driver seeds this once from it.
pub struct KeyGen(Aes128Ctr);

impl std::fmt::Debug for KeyGen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyGen(..)")
    }
}

impl KeyGen {
    /// A generator over `seed` (its first half keys AES, its second half starts the counter).
    pub fn new(seed: &KeySeed) -> KeyGen {
        let (key, iv) = seed.0.split_at(16);
        KeyGen(Aes128Ctr::new(key.into(), iv.into()))
    }

    /// Fill `out` with fresh secret bytes (the registrar's nonce key, say).
    pub fn fill(&mut self, out: &mut [u8]) {
        out.fill(0);
        self.0.apply_keystream(out);
    }

    /// A fresh master key and salt.
    pub fn next_key(&mut self) -> MasterKey {
        let mut k = MasterKey {
            key: [0; KEY_LEN],
            salt: [0; SALT_LEN],
        };
        self.0.apply_keystream(&mut k.key);
        self.0.apply_keystream(&mut k.salt);
        k
    }
}

/// One direction's session keys (RFC 3711 §4.3).
#[derive(Clone)]
struct Context {
    cipher_key: [u8; KEY_LEN],
    salt: [u8; SALT_LEN],
    /// HMAC-SHA1 keyed once; cloned per packet (no allocation).
    auth: HmacSha1,
}

impl Context {
    /// RFC 3711 §4.3.1 key derivation with key_derivation_rate 0 (r = 0), labels 0-2 (SRTP).
    fn derive(master: &MasterKey) -> Context {
        let prf = |label: u8, out: &mut [u8]| {
            // x = key_id XOR master_salt, key_id = label || r (48 bits of zero), right-aligned;
            // the PRF is AES-CM with IV = x * 2^16 (§4.3.3).
            let mut iv = [0u8; 16];
            iv[..SALT_LEN].copy_from_slice(&master.salt);
            iv[7] ^= label;
            out.fill(0);
            Aes128Ctr::new((&master.key).into(), (&iv).into()).apply_keystream(out);
        };
        let mut cipher_key = [0u8; KEY_LEN];
        let mut auth_key = [0u8; 20];
        let mut salt = [0u8; SALT_LEN];
        prf(0x00, &mut cipher_key);
        prf(0x01, &mut auth_key);
        prf(0x02, &mut salt);
        // HMAC accepts keys of any length.
        let auth = HmacSha1::new_from_slice(&auth_key).expect("HMAC takes any key length");
        Context {
            cipher_key,
            salt,
            auth,
        }
    }

    /// RFC 3711 §4.1.1: encrypt or decrypt the payload with AES-CM, IV =
    /// (salt * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16).
    fn crypt(&self, ssrc: u32, index: u64, payload: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..SALT_LEN].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= s;
        }
        Aes128Ctr::new((&self.cipher_key).into(), (&iv).into()).apply_keystream(payload);
    }

    /// RFC 3711 §4.2: HMAC-SHA1 over the packet and the ROC, truncated to 80 bits.
    fn tag(&self, authenticated: &[u8], roc: u32) -> [u8; TAG_LEN] {
        let mut mac = self.auth.clone();
        mac.update(authenticated);
        mac.update(&roc.to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }
}

/// Receive state of one of the peer's streams: its SSRC, the highest index seen and the
/// replay window (RFC 3711 §3.3.1, §3.3.2).
#[derive(Debug, Clone, Copy)]
struct Receive {
    ssrc: u32,
    roc: u32,
    s_l: u16,
    /// Bit `n` set: index `highest - n` was received.
    window: u64,
}

/// How many of the peer's SSRCs get their own receive state (RFC 3711 §3.2.3: a crypto
/// context per SSRC; RFC 4568 §6.4: all of them under the one SDES key). A stream past
/// this many is refused until a re-offer brings a new key: forgetting an old stream's
/// window would let its recorded packets be replayed as a "new" stream.
const RX_STREAMS: usize = 8;

/// One call's SRTP: our outbound key and the peer's inbound key.
pub struct SrtpSession {
    tx: Context,
    tx_roc: u32,
    tx_last_seq: Option<u16>,
    /// The one SSRC we send (its ROC is `tx_roc`; RFC 3711 §3.2.3).
    tx_ssrc: Option<u32>,
    rx: Context,
    rx_key: MasterKey,
    /// One entry per SSRC seen (and authenticated), in arrival order.
    rx_state: [Option<Receive>; RX_STREAMS],
    /// Where [`SrtpSession::unprotect`] decrypts.
    scratch: [u8; MAX_PACKET],
}

impl std::fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SrtpSession(..)")
    }
}

/// Where an RTP packet's payload starts (after CSRCs and a header extension, RFC 3550 §5.3.1),
/// and its sequence number and SSRC.
fn header(packet: &[u8]) -> Result<(usize, u16, u32), SrtpError> {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return Err(SrtpError::Malformed);
    }
    let mut len = 12 + 4 * usize::from(packet[0] & 0x0F);
    if packet[0] & 0x10 != 0 {
        let ext = packet.get(len + 2..len + 4).ok_or(SrtpError::Malformed)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    if len > packet.len() {
        return Err(SrtpError::Malformed);
    }
    let seq = u16::from_be_bytes([packet[2], packet[3]]);
    let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
    Ok((len, seq, ssrc))
}

impl SrtpSession {
    /// A session sending with `ours` and receiving with `theirs`.
    pub fn new(ours: &MasterKey, theirs: &MasterKey) -> SrtpSession {
        SrtpSession {
            tx: Context::derive(ours),
            tx_roc: 0,
            tx_last_seq: None,
            tx_ssrc: None,
            rx: Context::derive(theirs),
            rx_key: theirs.clone(),
            rx_state: [None; RX_STREAMS],
            scratch: [0; MAX_PACKET],
        }
    }

    /// A re-offer gave the peer's key again: if it is new, start its direction afresh.
    pub fn set_inbound(&mut self, theirs: &MasterKey) {
        if *theirs != self.rx_key {
            self.rx = Context::derive(theirs);
            self.rx_key = theirs.clone();
            self.rx_state = [None; RX_STREAMS];
        }
    }

    /// Protect the RTP packet in `buf[..len]` in place (RFC 3711 §3.3): encrypt its payload
    /// and append the tag; returns the SRTP length. `buf` needs [`TAG_LEN`] bytes of room.
    pub fn protect(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        if buf.len() < len + TAG_LEN {
            return Err(SrtpError::NoRoom);
        }
        let (start, seq, ssrc) = header(&buf[..len])?;
        // One outbound stream per session: another SSRC would need its own ROC (§3.2.3),
        // and counting its sequence numbers into ours would send it under a wrong one.
        if *self.tx_ssrc.get_or_insert(ssrc) != ssrc {
            return Err(SrtpError::TooManyStreams);
        }
        // §3.3.1: the sender's ROC counts wraps of the sequence number; §3.3.1 also says no
        // more than 2^48 packets under one key: past ROC 2^32 - 1 the index (and so the
        // keystream) would repeat.
        if let Some(last) = self.tx_last_seq
            && seq < last
            && last - seq > 0x8000
        {
            self.tx_roc = self.tx_roc.checked_add(1).ok_or(SrtpError::KeyExhausted)?;
        }
        self.tx_last_seq = Some(seq);
        let index = (u64::from(self.tx_roc) << 16) | u64::from(seq);
        self.tx.crypt(ssrc, index, &mut buf[start..len]);
        let tag = self.tx.tag(&buf[..len], self.tx_roc);
        buf[len..len + TAG_LEN].copy_from_slice(&tag);
        Ok(len + TAG_LEN)
    }

    /// Check and decrypt an SRTP packet (RFC 3711 §3.3): the RTP packet, decrypted into a
    /// buffer the session owns. Packets that fail authentication or replay leave no trace.
    pub fn unprotect(&mut self, packet: &[u8]) -> Result<&[u8], SrtpError> {
        if packet.len() < 12 + TAG_LEN || packet.len() > MAX_PACKET {
            return Err(SrtpError::Malformed);
        }
        let len = packet.len() - TAG_LEN;
        let (start, seq, ssrc) = header(&packet[..len])?;
        // RFC 3711 §3.2.3: each SSRC has its own ROC, highest index and replay window; a
        // new one starts at ROC 0 from its first packet (§3.3.1).
        let slot = match self
            .rx_state
            .iter()
            .position(|r| r.is_some_and(|r| r.ssrc == ssrc))
        {
            Some(i) => i,
            None => self
                .rx_state
                .iter()
                .position(Option::is_none)
                .ok_or(SrtpError::TooManyStreams)?,
        };
        let state = self.rx_state[slot];
        // §3.3.1 / Appendix A: guess the ROC from the highest sequence number seen.
        let (roc, s_l) = match state {
            Some(r) => (r.roc, r.s_l),
            None => (0, seq),
        };
        let v = if s_l < 0x8000 {
            if seq > s_l && seq - s_l > 0x8000 {
                // Before the stream's first wrap there is no earlier ROC: a packet from
                // "before" ROC 0 was never sent (and an index never goes back past 0).
                roc.checked_sub(1).ok_or(SrtpError::Replay)?
            } else {
                roc
            }
        } else if s_l - 0x8000 > seq {
            // Past ROC 2^32 - 1 the sender may send nothing more (§3.3.1: 2^48 packets).
            roc.checked_add(1).ok_or(SrtpError::Replay)?
        } else {
            roc
        };
        let index = (u64::from(v) << 16) | u64::from(seq);
        if let Some(r) = state {
            let highest = (u64::from(r.roc) << 16) | u64::from(r.s_l);
            if index <= highest {
                let behind = highest - index;
                if behind >= 64 || r.window & (1 << behind) != 0 {
                    return Err(SrtpError::Replay);
                }
            }
        }
        // Constant-time comparison of the truncated tag (RFC 3711 §3.3 step 5).
        let mut mac = self.rx.auth.clone();
        mac.update(&packet[..len]);
        mac.update(&v.to_be_bytes());
        mac.verify_truncated_left(&packet[len..])
            .map_err(|_| SrtpError::Authentication)?;
        // Authenticated: only now update this stream's receive state (§3.3.1 step 6).
        self.rx_state[slot] = Some(match state {
            None => Receive {
                ssrc,
                roc: v,
                s_l: seq,
                window: 1,
            },
            Some(r) => {
                let highest = (u64::from(r.roc) << 16) | u64::from(r.s_l);
                if index > highest {
                    let ahead = index - highest;
                    Receive {
                        roc: v,
                        s_l: seq,
                        window: if ahead >= 64 {
                            1
                        } else {
                            (r.window << ahead) | 1
                        },
                        ..r
                    }
                } else {
                    Receive {
                        window: r.window | (1 << (highest - index)),
                        ..r
                    }
                }
            }
        });
        self.scratch[..len].copy_from_slice(&packet[..len]);
        self.rx.crypt(ssrc, index, &mut self.scratch[start..len]);
        Ok(&self.scratch[..len])
    }
}

/// An SDES crypto attribute we can use (RFC 4568 §9.1), from an offer's `a=crypto` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesOffer {
    /// The attribute's tag, echoed in the answer (RFC 4568 §5.1.2).
    pub tag: u32,
    /// The offerer's key (for packets it sends).
    pub key: MasterKey,
}

/// The first `a=crypto` value (without `crypto:`) we can use: our suite, one `inline:`
/// key of the right size, no MKI, no session parameters (RFC 4568 §6.3: an unknown one
/// makes the line unusable). Key lifetimes are accepted and not enforced.
pub fn choose_crypto<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<SdesOffer> {
    values.into_iter().find_map(|v| {
        let mut parts = v.split_whitespace();
        let tag = parts.next()?.parse().ok()?;
        if parts.next()? != SUITE {
            return None;
        }
        let params = parts.next()?;
        if parts.next().is_some() || params.contains(';') {
            return None;
        }
        let inline = params.strip_prefix("inline:")?;
        let mut fields = inline.split('|');
        let key = MasterKey::from_base64(fields.next()?).ok()?;
        // RFC 4568 §6.1: `|lifetime` may follow, as `2^n` or decimal digits; `|MKI:length`
        // (a field with ':') is not supported, and anything else makes the line invalid.
        match (fields.next(), fields.next()) {
            (None, _) => {}
            (Some(lifetime), None) if is_lifetime(lifetime) => {}
            _ => return None,
        }
        Some(SdesOffer { tag, key })
    })
}

/// RFC 4568 §6.1: `lifetime = ["2^"] 1*(DIGIT)`, at most 2^48 packets (RFC 3711 §9.2).
fn is_lifetime(s: &str) -> bool {
    let digits = |d: &str| !d.is_empty() && d.len() <= 15 && d.bytes().all(|b| b.is_ascii_digit());
    match s.strip_prefix("2^") {
        Some(n) => digits(n) && n.parse::<u32>().is_ok_and(|n| n <= 48),
        None => digits(s) && s.parse::<u64>().is_ok_and(|n| n <= 1 << 48),
    }
}

/// Our answer's `a=crypto` value for the offer's `tag`.
pub fn crypto_attribute(tag: u32, ours: &MasterKey) -> String {
    format!("{tag} {SUITE} inline:{}", ours.to_base64())
}

#[cfg(test)]
#[path = "srtp_props.rs"]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn master(key: &str, salt: &str) -> MasterKey {
        let mut m = MasterKey {
            key: [0; 16],
            salt: [0; 14],
        };
        m.key.copy_from_slice(&hex(key));
        m.salt.copy_from_slice(&hex(salt));
        m
    }

    #[test]
    fn key_derivation_matches_rfc_3711_appendix_b3() {
        let m = master(
            "E1F97A0D3E018BE0D64FA32C06DE4139",
            "0EC675AD498AFEEBB6960B3AABE6",
        );
        let c = Context::derive(&m);
        assert_eq!(
            c.cipher_key.to_vec(),
            hex("C61E7A93744F39EE10734AFE3FF7A087")
        );
        assert_eq!(c.salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
        let mut auth_key = [0u8; 20];
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&m.salt);
        iv[7] ^= 1;
        Aes128Ctr::new((&m.key).into(), (&iv).into()).apply_keystream(&mut auth_key);
        assert_eq!(
            auth_key.to_vec(),
            hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
        );
    }

    #[test]
    fn aes_cm_keystream_matches_rfc_3711_appendix_b2() {
        // Session key and salt of B.2; with SSRC 0 and index 0 the IV is salt * 2^16.
        let c = Context {
            cipher_key: hex("2B7E151628AED2A6ABF7158809CF4F3C").try_into().unwrap(),
            salt: hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD").try_into().unwrap(),
            auth: HmacSha1::new_from_slice(b"k").unwrap(),
        };
        let mut ks = [0u8; 32];
        c.crypt(0, 0, &mut ks);
        assert_eq!(
            ks.to_vec(),
            hex("E03EAD0935C95E80E166B16DD92B4EB4D23513162B02D0F72A43A2FE4A5F97AB")
        );
    }

    fn packet(seq: u16) -> ([u8; 12 + 160 + TAG_LEN], usize) {
        let mut p = [0u8; 12 + 160 + TAG_LEN];
        p[0] = 0x80;
        p[1] = 0;
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[8..12].copy_from_slice(&0xDEADBEEFu32.to_be_bytes());
        for (i, b) in p[12..172].iter_mut().enumerate() {
            *b = i as u8;
        }
        (p, 172)
    }

    fn pair() -> (SrtpSession, SrtpSession) {
        let mut g = KeyGen::new(&KeySeed([7; 32]));
        let (a, b) = (g.next_key(), g.next_key());
        assert_ne!(a, b);
        (SrtpSession::new(&a, &b), SrtpSession::new(&b, &a))
    }

    fn alice_key_guess() -> MasterKey {
        KeyGen::new(&KeySeed([8; 32])).next_key()
    }

    #[test]
    fn round_trip_tamper_and_replay() {
        let (mut alice, mut bob) = pair();
        let (mut p, len) = packet(65_530);
        let plain = p;
        let n = alice.protect(&mut p, len).unwrap();
        assert_eq!(n, len + TAG_LEN);
        assert_ne!(p[12..len], plain[12..len], "payload encrypted");
        assert_eq!(p[..12], plain[..12], "header in clear");
        assert_eq!(bob.unprotect(&p[..n]).unwrap(), &plain[..len]);
        assert_eq!(bob.unprotect(&p[..n]), Err(SrtpError::Replay));
        // A forged packet fails and leaves no trace: the genuine one still passes below.
        let (mut bad, _) = packet(65_531);
        let mut forger = SrtpSession::new(&alice_key_guess(), &alice_key_guess());
        let _ = forger.protect(&mut bad, len).unwrap();
        assert_eq!(bob.unprotect(&bad[..n]), Err(SrtpError::Authentication));
        let mut flipped = p;
        flipped[3] ^= 1;
        assert_eq!(bob.unprotect(&flipped[..n]), Err(SrtpError::Authentication));
        // Across the sequence number's wrap (the ROC moves to 1 on both sides), and a
        // late packet from before the wrap still decrypts.
        let mut late = None;
        for seq in [65_531u16, 65_535, 0, 1, 2] {
            let (mut p, len) = packet(seq);
            let n = alice.protect(&mut p, len).unwrap();
            if seq == 65_535 {
                late = Some(p);
                continue;
            }
            assert_eq!(
                bob.unprotect(&p[..n]).unwrap(),
                &packet(seq).0[..len],
                "{seq}"
            );
        }
        assert_eq!(alice.tx_roc, 1);
        let late = late.unwrap();
        assert_eq!(
            bob.unprotect(&late[..len + TAG_LEN]).unwrap(),
            &packet(65_535).0[..len]
        );
        assert!(bob.unprotect(&[0x80; 12]).is_err());
    }

    #[test]
    fn sdes_lines() {
        let k = KeyGen::new(&KeySeed([1; 32])).next_key();
        let ours = crypto_attribute(3, &k);
        assert!(
            ours.starts_with("3 AES_CM_128_HMAC_SHA1_80 inline:"),
            "{ours}"
        );
        let back = choose_crypto(["1 AES_CM_128_HMAC_SHA1_32 inline:x", ours.as_str()]).unwrap();
        assert_eq!((back.tag, back.key), (3, k.clone()));
        let with_lifetime = format!("{ours}|2^31");
        assert!(choose_crypto([with_lifetime.as_str()]).is_some());
        let with_mki = format!("{ours}|2^31|1:4");
        assert!(choose_crypto([with_mki.as_str()]).is_none());
        // A lifetime that is not one (RFC 4568 §6.1) makes the line invalid; the next
        // usable line is taken (§7.1.1), whatever the tags.
        for bad in ["|", "|2^", "|2^49", "|x", "|2^20|2^20", "|-1", "|1e9", "||"] {
            let line = format!("{ours}{bad}");
            assert!(choose_crypto([line.as_str()]).is_none(), "{bad}");
            let good = ours.replacen('3', "7", 1);
            let pick = choose_crypto([line.as_str(), good.as_str()]).unwrap();
            assert_eq!(pick.tag, 7, "{bad}");
        }
        for ok in ["|2^48", "|1048576", "|2^0"] {
            let line = format!("{ours}{ok}");
            assert!(choose_crypto([line.as_str()]).is_some(), "{ok}");
        }
        let with_param = format!("{ours} UNENCRYPTED_SRTP");
        assert!(choose_crypto([with_param.as_str()]).is_none());
        assert!(choose_crypto(["1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ="]).is_none());
        assert_eq!(format!("{k:?}"), "MasterKey(..)", "keys never print");
    }
}
