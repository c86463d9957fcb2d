//! SDP offer/answer for G.711 audio (RFC 3264, RFC 4566), with `sdp-types` for the syntax.
//!
//! Tested subset: one audio stream (the first `m=audio` with RTP/AVP or RTP/SAVP); other streams are
//! refused in the answer with port 0 (RFC 3264 §6). Codecs: PCMU and PCMA in the offerer's
//! order of preference, static or dynamic payload numbers; `telephone-event/8000` (RFC 4733)
//! answered with the offerer's payload number; ptime 20.
//!
//! SRTP (RFC 3711) with SDES keys (RFC 4568): an `RTP/SAVP` audio stream carries its
//! `a=crypto` lines in [`RemoteAudio::crypto`]; the answer keeps the profile and gives our
//! key for the suite chosen. An `RTP/AVP` stream's `a=crypto` lines (the "best effort"
//! SRTP some phones offer) are ignored: the profile decides, and the answer is plain RTP.
//! Whether the signalling was secure enough to carry keys is the engine's decision.

use crate::srtp::{self, MasterKey, SdesOffer};
use ivr_audio::Codec;
use sdp_types::{Attribute, Connection, Media, Origin, Session};
use std::net::{IpAddr, SocketAddr};

/// Media direction (RFC 3264 §5.1, §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Both ways.
    SendRecv,
    /// The describing side only sends.
    SendOnly,
    /// The describing side only receives.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    /// The answer to an offer with this direction, for an answerer willing to send and receive.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// Whether the side using this direction may send.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the side using this direction may receive.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// What the other side described for its audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteAudio {
    /// Where to send RTP (before latching).
    pub addr: SocketAddr,
    /// The G.711 codecs it accepts, in its order of preference, with its payload numbers.
    pub codecs: Vec<(u8, Codec)>,
    /// Its telephone-event payload number, if it offered RFC 4733.
    pub dtmf_pt: Option<u8>,
    /// Its direction.
    pub direction: Direction,
    /// Index of the audio m-line.
    pub index: usize,
    /// Every m-line's media, protocol and formats, so an answer can refuse the others in place.
    pub lines: Vec<(String, String, String)>,
    /// The stream is `RTP/SAVP` (RFC 3711 §7.1): media must be SRTP.
    pub secure: bool,
    /// For `RTP/SAVP`: the first `a=crypto` line we can use (RFC 4568), if any.
    pub crypto: Option<SdesOffer>,
}

/// The negotiated stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The codec used both ways.
    pub codec: Codec,
    /// Its payload number (the offerer's).
    pub pt: u8,
    /// The telephone-event payload number, if both sides have it.
    pub dtmf_pt: Option<u8>,
    /// Our direction.
    pub direction: Direction,
}

/// Why a description cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// Not valid SDP.
    #[error("malformed SDP: {0}")]
    Syntax(String),
    /// No `m=audio` line over RTP/AVP.
    #[error("no RTP/AVP audio stream")]
    NoAudio,
    /// No connection address for the audio stream.
    #[error("no usable connection address")]
    NoConnection,
    /// No PCMU or PCMA in the audio stream (answer 488).
    #[error("no common codec (PCMU or PCMA needed)")]
    NoCommonCodec,
    /// RTP/SAVP without an `a=crypto` line for AES_CM_128_HMAC_SHA1_80 (answer 488).
    #[error("no usable SRTP crypto suite (AES_CM_128_HMAC_SHA1_80 with an inline key needed)")]
    NoCryptoSuite,
    /// RTP/SAVP offered over signalling that is not TLS: the keys went in clear
    /// (RFC 4568 §8.3; answer 488).
    #[error("SRTP keys offered without TLS")]
    KeysInClear,
    /// A re-offer switched between RTP/AVP and RTP/SAVP (answer 488).
    #[error("the media profile cannot change in a call")]
    ProfileChanged,
}

/// Read the audio stream from a remote description (offer or answer).
pub fn parse_remote(body: &[u8]) -> Result<RemoteAudio, SdpError> {
    let session = Session::parse(body).map_err(|e| {
        // The parser quotes bad lines; one may hold an SDES key, which must not reach logs
        // or a reason phrase.
        let text = e.to_string();
        SdpError::Syntax(if text.contains("inline:") {
            "a line with key material (not shown)".to_string()
        } else {
            text
        })
    })?;
    let (index, media) = session
        .medias
        .iter()
        .enumerate()
        .find(|(_, m)| {
            m.media == "audio"
                && (m.proto.eq_ignore_ascii_case("RTP/AVP")
                    || m.proto.eq_ignore_ascii_case("RTP/SAVP"))
        })
        .ok_or(SdpError::NoAudio)?;
    let secure = media.proto.eq_ignore_ascii_case("RTP/SAVP");
    let crypto = if secure {
        Some(
            srtp::choose_crypto(
                media
                    .attributes
                    .iter()
                    .filter(|a| a.attribute == "crypto")
                    .filter_map(|a| a.value.as_deref()),
            )
            .ok_or(SdpError::NoCryptoSuite)?,
        )
    } else {
        None
    };
    let conn = media
        .connections
        .first()
        .or(session.connection.as_ref())
        .ok_or(SdpError::NoConnection)?;
    let ip: IpAddr = conn
        .connection_address
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .ok_or(SdpError::NoConnection)?;
    let mut codecs = Vec::new();
    let mut dtmf_pt = None;
    for fmt in media.fmt.split_whitespace() {
        let Ok(pt) = fmt.parse::<u8>() else { continue };
        let rtpmap = media.attributes.iter().find_map(|a| {
            let v = a.value.as_deref()?;
            let (n, enc) = v.split_once(' ')?;
            (a.attribute == "rtpmap" && n.trim() == fmt).then(|| enc.trim().to_ascii_lowercase())
        });
        match rtpmap.as_deref() {
            Some("pcmu/8000") | Some("pcmu/8000/1") => codecs.push((pt, Codec::Pcmu)),
            Some("pcma/8000") | Some("pcma/8000/1") => codecs.push((pt, Codec::Pcma)),
            Some("telephone-event/8000") => dtmf_pt = dtmf_pt.or(Some(pt)),
            Some(_) => {}
            None => {
                if let Some(c) = Codec::from_payload_type(pt) {
                    codecs.push((pt, c));
                }
            }
        }
    }
    let find_dir = |attrs: &[Attribute]| {
        attrs.iter().find_map(|a| match a.attribute.as_str() {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        })
    };
    let mut direction = find_dir(&media.attributes)
        .or_else(|| find_dir(&session.attributes))
        .unwrap_or(Direction::SendRecv);
    // RFC 3264 §8.4 (old style hold): c=0.0.0.0 means "do not send to me".
    if ip.is_unspecified() && direction == Direction::SendRecv {
        direction = Direction::SendOnly;
    }
    Ok(RemoteAudio {
        addr: SocketAddr::new(ip, media.port),
        codecs,
        dtmf_pt,
        direction: if media.port == 0 {
            Direction::Inactive
        } else {
            direction
        },
        index,
        lines: session
            .medias
            .iter()
            .map(|m| (m.media.clone(), m.proto.clone(), m.fmt.clone()))
            .collect(),
        secure,
        crypto,
    })
}

/// Choose what to answer to an offer (RFC 3264 §6.1): the offerer's first G.711 codec.
pub fn negotiate(offer: &RemoteAudio) -> Result<Negotiated, SdpError> {
    let (pt, codec) = *offer.codecs.first().ok_or(SdpError::NoCommonCodec)?;
    Ok(Negotiated {
        codec,
        pt,
        dtmf_pt: offer.dtmf_pt,
        direction: offer.direction.answer(),
    })
}

/// Read an answer to our offer (late-offer calls): the answerer's first codec that we offered.
pub fn accept_answer(answer: &RemoteAudio) -> Result<Negotiated, SdpError> {
    let (pt, codec) = *answer.codecs.first().ok_or(SdpError::NoCommonCodec)?;
    let ours = match answer.direction {
        Direction::SendRecv => Direction::SendRecv,
        Direction::SendOnly => Direction::RecvOnly,
        Direction::RecvOnly => Direction::SendOnly,
        Direction::Inactive => Direction::Inactive,
    };
    Ok(Negotiated {
        codec,
        pt,
        dtmf_pt: answer.dtmf_pt,
        direction: ours,
    })
}

/// Our side of the session description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalSession {
    /// o= session id.
    pub id: u64,
    /// o= version, incremented on every new description (RFC 3264 §8).
    pub version: u64,
    /// Where we receive RTP.
    pub addr: SocketAddr,
}

fn session(local: &LocalSession) -> Session {
    let mut origin = Origin::with_ip_addr(local.id.to_string(), local.version, local.addr.ip());
    origin.set_username("ivr");
    let mut s = Session::new(origin, "ivr");
    s.connection = Some(Connection::from_ip_addr(local.addr.ip()));
    s.times.push(sdp_types::Time::new(0, 0));
    s
}

fn audio_media(port: u16, fmts: &[u8]) -> Media {
    let fmt: Vec<String> = fmts.iter().map(u8::to_string).collect();
    Media {
        media: "audio".into(),
        port,
        num_ports: None,
        proto: "RTP/AVP".into(),
        fmt: fmt.join(" "),
        media_title: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        key: None,
        attributes: Vec::new(),
    }
}

/// The answer for a negotiated offer: same number of m-lines, others refused with port 0.
pub fn build_answer(local: &LocalSession, offer: &RemoteAudio, n: &Negotiated) -> Vec<u8> {
    answer_with(local, offer, n, None)
}

/// The answer to an RTP/SAVP offer: as [`build_answer`], the profile kept and our key in
/// an `a=crypto` line with the offer's tag (RFC 4568 §7.1.2).
pub fn build_secure_answer(
    local: &LocalSession,
    offer: &RemoteAudio,
    n: &Negotiated,
    ours: &MasterKey,
) -> Vec<u8> {
    answer_with(local, offer, n, Some(ours))
}

fn answer_with(
    local: &LocalSession,
    offer: &RemoteAudio,
    n: &Negotiated,
    ours: Option<&MasterKey>,
) -> Vec<u8> {
    let mut s = session(local);
    for (i, (media, proto, fmt)) in offer.lines.iter().enumerate() {
        if i != offer.index {
            // RFC 3264 §6: a refused stream keeps its place, with port 0.
            let mut m = audio_media(0, &[]);
            (m.media, m.proto, m.fmt) = (media.clone(), proto.clone(), fmt.clone());
            s.medias.push(m);
            continue;
        }
        let mut fmts = vec![n.pt];
        fmts.extend(n.dtmf_pt);
        let mut m = audio_media(local.addr.port(), &fmts);
        m.attributes.push(Attribute::with_value(
            "rtpmap",
            format!("{} {}/8000", n.pt, n.codec.encoding_name()),
        ));
        if let Some(d) = n.dtmf_pt {
            m.attributes.push(Attribute::with_value(
                "rtpmap",
                format!("{d} telephone-event/8000"),
            ));
            m.attributes
                .push(Attribute::with_value("fmtp", format!("{d} 0-16")));
        }
        m.attributes.push(Attribute::with_value("ptime", "20"));
        m.attributes.push(Attribute::new(n.direction.attribute()));
        if let (Some(ours), Some(theirs)) = (ours, &offer.crypto) {
            m.proto = "RTP/SAVP".into();
            m.attributes.push(Attribute::with_value(
                "crypto",
                srtp::crypto_attribute(theirs.tag, ours),
            ));
        }
        s.medias.push(m);
    }
    write(&s)
}

/// Our offer on an SRTP call (a refresh, a re-INVITE without SDP): as [`build_offer`],
/// RTP/SAVP with our key (RFC 4568 §7.1.1, tag 1).
pub fn build_secure_offer(local: &LocalSession, direction: Direction, ours: &MasterKey) -> Vec<u8> {
    offer_with(local, direction, Some(ours))
}

/// Our offer, for an INVITE that came without one (RFC 3261 §13.2.1 late offer).
pub fn build_offer(local: &LocalSession, direction: Direction) -> Vec<u8> {
    offer_with(local, direction, None)
}

fn offer_with(local: &LocalSession, direction: Direction, ours: Option<&MasterKey>) -> Vec<u8> {
    let mut s = session(local);
    let mut m = audio_media(local.addr.port(), &[0, 8, 101]);
    m.attributes
        .push(Attribute::with_value("rtpmap", "0 PCMU/8000"));
    m.attributes
        .push(Attribute::with_value("rtpmap", "8 PCMA/8000"));
    m.attributes
        .push(Attribute::with_value("rtpmap", "101 telephone-event/8000"));
    m.attributes.push(Attribute::with_value("fmtp", "101 0-16"));
    m.attributes.push(Attribute::with_value("ptime", "20"));
    m.attributes.push(Attribute::new(direction.attribute()));
    if let Some(ours) = ours {
        m.proto = "RTP/SAVP".into();
        m.attributes.push(Attribute::with_value(
            "crypto",
            srtp::crypto_attribute(1, ours),
        ));
    }
    s.medias.push(m);
    write(&s)
}

fn write(s: &Session) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    // Writing to a Vec cannot fail.
    let _ = s.write(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=video 5000 RTP/AVP 96\r\nm=audio 6000 RTP/AVP 18 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

    fn local() -> LocalSession {
        LocalSession {
            id: 7,
            version: 1,
            addr: "127.0.0.1:20000".parse().unwrap(),
        }
    }

    #[test]
    fn picks_offerers_first_g711_and_keeps_dtmf_number() {
        let r = parse_remote(OFFER.as_bytes()).unwrap();
        assert_eq!(r.addr, "127.0.0.1:6000".parse().unwrap());
        assert_eq!(r.codecs, vec![(8, Codec::Pcma), (0, Codec::Pcmu)]);
        let n = negotiate(&r).unwrap();
        assert_eq!((n.codec, n.pt, n.dtmf_pt), (Codec::Pcma, 8, Some(101)));
        let answer = String::from_utf8(build_answer(&local(), &r, &n)).unwrap();
        assert!(answer.contains("m=video 0 RTP/AVP"), "{answer}");
        assert!(answer.contains("m=audio 20000 RTP/AVP 8 101"), "{answer}");
        assert!(
            answer.contains("a=rtpmap:101 telephone-event/8000"),
            "{answer}"
        );
        assert!(
            answer.contains("a=ptime:20") && answer.contains("a=sendrecv"),
            "{answer}"
        );
        // the answer parses back and names the same stream
        let back = parse_remote(answer.as_bytes()).unwrap();
        assert_eq!(back.codecs, vec![(8, Codec::Pcma)]);
    }

    #[test]
    fn dynamic_payload_numbers_by_rtpmap() {
        let o = OFFER
            .replace("18 8 0 101", "96 101")
            .replace("a=rtpmap:101", "a=rtpmap:96 PCMU/8000\r\na=rtpmap:101");
        let r = parse_remote(o.as_bytes()).unwrap();
        assert_eq!(r.codecs, vec![(96, Codec::Pcmu)]);
    }

    #[test]
    fn hold_directions() {
        let o = OFFER.replace("a=rtpmap:101 telephone-event/8000\r\n", "a=sendonly\r\n");
        assert_eq!(
            negotiate(&parse_remote(o.as_bytes()).unwrap())
                .unwrap()
                .direction,
            Direction::RecvOnly
        );
        let o = OFFER.replace("a=rtpmap:101 telephone-event/8000\r\n", "a=inactive\r\n");
        assert_eq!(
            negotiate(&parse_remote(o.as_bytes()).unwrap())
                .unwrap()
                .direction,
            Direction::Inactive
        );
        let o = OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
        assert_eq!(
            negotiate(&parse_remote(o.as_bytes()).unwrap())
                .unwrap()
                .direction,
            Direction::RecvOnly
        );
    }

    #[test]
    fn errors() {
        let o = OFFER.replace("18 8 0 101", "18 101");
        assert_eq!(
            negotiate(&parse_remote(o.as_bytes()).unwrap()),
            Err(SdpError::NoCommonCodec)
        );
        assert!(matches!(parse_remote(b"garbage"), Err(SdpError::Syntax(_))));
        let o = OFFER.replace("m=audio", "m=text");
        assert_eq!(parse_remote(o.as_bytes()), Err(SdpError::NoAudio));
    }

    #[test]
    fn savp_offers_carry_keys_and_the_answer_keeps_the_profile() {
        let key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
        let o = OFFER.replace("RTP/AVP 18", "RTP/SAVP 18").replace(
            "a=rtpmap:101 telephone-event/8000\r\n",
            &format!(
                "a=rtpmap:101 telephone-event/8000\r\na=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{key}\r\n\
                 a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^20\r\n"
            ),
        );
        let r = parse_remote(o.as_bytes()).unwrap();
        assert!(r.secure);
        assert_eq!(r.crypto.as_ref().map(|c| c.tag), Some(2));
        let ours = srtp::KeyGen::new(&srtp::KeySeed([3; 32])).next_key();
        let n = negotiate(&r).unwrap();
        let answer = String::from_utf8(build_secure_answer(&local(), &r, &n, &ours)).unwrap();
        assert!(answer.contains("m=audio 20000 RTP/SAVP 8 101"), "{answer}");
        assert!(
            answer.contains(&format!(
                "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{}",
                ours.to_base64()
            )),
            "{answer}"
        );
        let back = parse_remote(answer.as_bytes()).unwrap();
        assert_eq!(back.crypto.map(|c| c.key), Some(ours));
        // A syntax error never quotes a key.
        let broken = o.replace("a=crypto:2", "crypto:2");
        let e = parse_remote(broken.as_bytes()).unwrap_err().to_string();
        assert!(!e.contains(key), "{e}");
        // SAVP without our suite is refused; AVP's crypto lines are ignored.
        let no_suite = o.replace("_80 inline", "_32 inline");
        assert_eq!(
            parse_remote(no_suite.as_bytes()),
            Err(SdpError::NoCryptoSuite)
        );
        let avp = o.replace("RTP/SAVP", "RTP/AVP");
        let r = parse_remote(avp.as_bytes()).unwrap();
        assert!(!r.secure && r.crypto.is_none());
        let answer = String::from_utf8(build_answer(&local(), &r, &n)).unwrap();
        assert!(
            !answer.contains("crypto") && answer.contains("RTP/AVP 8 101"),
            "{answer}"
        );
    }

    #[test]
    fn offer_lists_both_laws_and_events() {
        let o = String::from_utf8(build_offer(&local(), Direction::SendRecv)).unwrap();
        let r = parse_remote(o.as_bytes()).unwrap();
        assert_eq!(r.codecs, vec![(0, Codec::Pcmu), (8, Codec::Pcma)]);
        assert_eq!(r.dtmf_pt, Some(101));
    }
}
