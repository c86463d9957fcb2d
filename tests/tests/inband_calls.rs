//! In-band keys in whole calls in virtual time: a caller whose phone offers no
//! telephone-event sends its keys as tones, and its line echoes the engine's prompts back
//! at −10 dB under everything it sends. Keys must be heard from the first packet of the
//! call and during prompts (barge-in); the echo must never become a key, and neither may a
//! caller's speech while a message is recorded.

use ivr_audio::dtmf_set::amplitude;
use ivr_audio::{Codec, Digit};
use ivr_engine::{CallHandle, Event, VoicemailCmd};
use ivr_sip::Transport;
use ivr_tests::caller::{Caller, Net, response};
use ivr_tests::speech;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// A caller on an echoing line, with no RFC 4733.
struct Line {
    caller: Caller,
    call: CallHandle,
    /// Engine packets already echoed.
    heard: usize,
    echo: VecDeque<i16>,
    /// The loudest echoed sample so far (proof the echo is there).
    echo_peak: i16,
}

impl Line {
    fn dial(net: &mut Net, addr: &str, id: &str) -> Line {
        let mut caller = Caller::new(addr, id);
        let offer = caller.offer_without_telephone_event();
        let invite = caller.invite_with_sdp(&offer);
        net.send_sip(Transport::Udp, caller.addr, &invite);
        let ok = response(&net.take_sip(caller.addr), 200)
            .expect("200 OK")
            .clone();
        assert!(!String::from_utf8_lossy(&ok.body).contains("telephone-event"));
        caller.on_response(&ok);
        let ack = caller.ack(None);
        net.send_sip(Transport::Udp, caller.addr, &ack);
        let call = net.last_call().expect("a call");
        Line {
            caller,
            call,
            heard: 0,
            echo: VecDeque::new(),
            echo_peak: 0,
        }
    }

    /// Send `pcm` (then nothing) in 20 ms packets, each over the echo of what the engine
    /// sent up to then, letting 20 ms of virtual time pass per packet.
    fn send(&mut self, net: &mut Net, pcm: &[i16]) {
        for chunk in pcm.chunks(160) {
            let sent = net.rtp_of(self.call);
            for p in &sent[self.heard..] {
                self.echo
                    .extend(p.data[12..].iter().map(|c| Codec::Pcmu.decode(*c)));
            }
            self.heard = sent.len();
            self.echo_peak = self
                .echo
                .iter()
                .fold(self.echo_peak, |m, x| m.max(x.saturating_abs()));
            let frame: Vec<i16> = chunk
                .iter()
                .map(|&s| {
                    let e = self.echo.pop_front().map_or(0.0, |x| f64::from(x) * 0.316);
                    (f64::from(s) + e).round().clamp(-32768.0, 32767.0) as i16
                })
                .collect();
            for p in self.caller.audio_packets(&frame) {
                net.send_rtp(self.call.leg(0), self.caller.media, &p);
            }
            net.advance(Duration::from_millis(20));
        }
    }

    /// Press `digit`: 40 ms of its tones at −10 dBm0 each, then `gap_ms` of quiet.
    fn press(&mut self, net: &mut Net, digit: Digit, gap_ms: usize) {
        let mut pcm = ivr_audio::tone::dtmf(digit, 8000, 320, amplitude(-10.0));
        pcm.extend(vec![0; gap_ms * 8]);
        self.send(net, &pcm);
    }

    fn quiet(&mut self, net: &mut Net, ms: usize) {
        self.send(net, &vec![0; ms * 8]);
    }
}

fn demo() -> Arc<ivr_menus::Menus> {
    Arc::new(ivr_server::config::load_demo().expect("demo compiles"))
}

fn digits(net: &Net) -> String {
    net.events
        .iter()
        .filter_map(|e| match e {
            Event::Digit { digit, .. } => Some(digit.as_char()),
            _ => None,
        })
        .collect()
}

fn playing(net: &Net) -> Vec<String> {
    net.events
        .iter()
        .filter_map(|e| match e {
            Event::Playing { prompt, .. } => Some(prompt.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_key_in_the_first_packet_of_the_call_is_heard() {
    let mut net = Net::new(demo());
    let mut line = Line::dial(&mut net, "127.0.0.1:7301", "inband-first");
    line.press(&mut net, Digit::D2, 100);
    assert_eq!(digits(&net), "2");
    assert_eq!(net.menus_entered(), ["language", "main_en"]);
}

#[test]
fn keys_interrupt_prompts_over_their_own_echo() {
    let mut net = Net::new(demo());
    let mut line = Line::dial(&mut net, "127.0.0.1:7302", "inband-echo");
    // 1.2 s into the greeting, whose echo comes back meanwhile: English.
    line.quiet(&mut net, 1200);
    assert_eq!(digits(&net), "", "the greeting's echo is not a key");
    assert!(
        line.echo_peak > 5000,
        "the greeting is echoed: peak {}",
        line.echo_peak
    );
    line.press(&mut net, Digit::D2, 400);
    // 0.4 s into the English menu: opening hours; 0.4 s into them: back to the start.
    line.press(&mut net, Digit::D3, 400);
    line.press(&mut net, Digit::D0, 400);
    // French, at 10 keys a second with the next menu's option right behind it: 1 then 3.
    line.press(&mut net, Digit::D1, 40);
    line.press(&mut net, Digit::D3, 2000);
    assert_eq!(digits(&net), "23013");
    assert_eq!(
        net.menus_entered(),
        ["language", "main_en", "language", "main_fr"]
    );
    let heard = playing(&net);
    assert!(
        heard.iter().filter(|p| p.starts_with("hours_")).count() == 2,
        "hours in English, then in French: {heard:?}"
    );
    // A long wait with nothing but the echo of the prompts: still no key.
    line.quiet(&mut net, 3000);
    assert_eq!(digits(&net), "23013");
}

#[test]
fn speech_during_a_recording_is_not_keys_and_pound_still_ends_it() {
    let mut net = Net::new(demo());
    let mut line = Line::dial(&mut net, "127.0.0.1:7303", "inband-vm");
    line.quiet(&mut net, 600);
    line.press(&mut net, Digit::D2, 600); // English
    line.press(&mut net, Digit::D4, 600); // leave a message
    line.quiet(&mut net, 1000);
    line.press(&mut net, Digit::D1, 200); // call me back on this number
    for _ in 0..200 {
        if net
            .voicemail
            .iter()
            .any(|c| matches!(c, VoicemailCmd::Start { .. }))
        {
            break;
        }
        line.quiet(&mut net, 100);
    }
    assert!(
        net.voicemail
            .iter()
            .any(|c| matches!(c, VoicemailCmd::Start { .. })),
        "recording: {:?}",
        net.events
    );
    let before = digits(&net);
    assert_eq!(before, "241");
    // The caller talks: every English built-in prompt, one after the other, as its voice.
    let mut talk = Vec::new();
    for (name, p) in speech::prompts() {
        if name.contains("builtin/en") {
            talk.extend(speech::heard(&p, Codec::Pcmu));
        }
    }
    assert!(talk.len() > 8000 * 10, "{} s of speech", talk.len() / 8000);
    line.send(&mut net, &talk);
    assert_eq!(digits(&net), before, "speech became keys");
    assert!(
        !net.voicemail
            .iter()
            .any(|c| matches!(c, VoicemailCmd::Submit { .. } | VoicemailCmd::Stop { .. })),
        "the recording goes on"
    );
    line.press(&mut net, Digit::Pound, 200);
    assert_eq!(digits(&net), "241#");
    assert!(
        net.voicemail
            .iter()
            .any(|c| matches!(c, VoicemailCmd::Submit { .. })),
        "# ends the message"
    );
}
