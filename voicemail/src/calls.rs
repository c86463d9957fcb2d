//! Call records (issue #12): one per call, made by the engine when the call ends, with the
//! path the caller took through the menus; stored by [`crate::store`] (tables `calls` and
//! `call_steps`) and read back by `ivr calls`.

/// One call, from the INVITE to its end. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "store", derive(serde::Serialize, serde::Deserialize))]
pub struct CallRecord {
    /// The SIP Call-ID of the caller's leg.
    pub call_id: String,
    /// When the INVITE arrived.
    pub started_ms: i64,
    /// When the call was confirmed (ACK of our 200), if it was.
    pub answered_ms: Option<i64>,
    /// When it ended.
    pub ended_ms: i64,
    /// From start to end.
    pub duration_ms: i64,
    /// The caller's number (P-Asserted-Identity from a trusted proxy, else the From user),
    /// if given.
    pub caller: Option<String>,
    /// The called number (the Request-URI's user part), if any.
    pub called: Option<String>,
    /// Why it ended: `caller_hangup`, `engine_hangup`, `shutdown`, `timeout`, ... (see
    /// `ivr_engine::EndReason`).
    pub end_reason: String,
    /// The menu the call started in (its entry point).
    pub entry: Option<String>,
    /// The caller's language at the end, if the config has languages.
    pub language: Option<String>,
    /// Where the call left the menus: `voicemail`, `queue`, `transfer`, `callback` or
    /// `hangup` (the menus hung up); `None` if the caller hung up in the menus.
    pub exit: Option<String>,
    /// The mailbox, queue or destination it left to.
    pub exit_to: Option<String>,
    /// The queue it waited in, if any (the last one).
    pub queue: Option<String>,
    /// How long it waited there, once it left the line (answered, gave up, timed out).
    pub queue_wait_ms: Option<i64>,
    /// The agent who answered, if one did.
    pub agent: Option<String>,
    /// The steps through the menus, in order.
    pub steps: Vec<CallStep>,
    /// Whether steps were left out (a path is bounded).
    pub steps_truncated: bool,
    /// The satisfaction survey's answers, one per question asked, in order (none if no
    /// survey was asked). Absent from records written before surveys existed.
    #[cfg_attr(feature = "store", serde(default))]
    pub answers: Vec<CallAnswer>,
    /// The callback request the call left (its id), if it handed one to the store: a
    /// message or a number left in a mailbox, or a queued callback taken in its place.
    /// Absent from records written before requests were linked.
    #[cfg_attr(feature = "store", serde(default))]
    pub request_id: Option<String>,
}

/// One survey question put to the caller and how it was answered (see
/// `ivr_menus::survey`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "store", derive(serde::Serialize, serde::Deserialize))]
pub struct CallAnswer {
    /// The survey's name.
    pub survey: String,
    /// The question's name.
    pub question: String,
    /// The key that answered it, if one did.
    pub answer: Option<String>,
    /// `answered`, `timeout`, `invalid` (the retries were spent on wrong keys) or `hangup`.
    pub outcome: String,
    /// A recorded question's comment: the store key of its WAV file (`KEY.wav` in the
    /// voicemail folder; see [`is_comment_key`]), if the caller spoke. Absent from
    /// records written before comments existed.
    #[cfg_attr(feature = "store", serde(default))]
    pub recording: Option<String>,
}

/// What every comment's store key starts with (the rest: the wall-clock second and a
/// random hex word, `comment-1764640000-0a1b2c3d`).
pub const COMMENT_PREFIX: &str = "comment-";

/// Whether `key` is a comment's store key as the engine makes them: the prefix, then
/// only ASCII digits, hex letters and dashes, at most 64 bytes. Anything else (a path, a
/// dot) is refused before it names a file.
pub fn is_comment_key(key: &str) -> bool {
    key.len() <= 64
        && key.strip_prefix(COMMENT_PREFIX).is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-')
        })
}

/// One presentation of a menu and what the caller did (see `ivr_menus::path`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "store", derive(serde::Serialize, serde::Deserialize))]
pub struct CallStep {
    /// The menu's name.
    pub menu: String,
    /// When the step began (Unix milliseconds).
    pub at_ms: i64,
    /// How it ended: `key`, `extension`, `entry`, `invalid`, `timeout`, `hangup`, `ended`,
    /// or `open` (the call left the menus without an input, e.g. a router or a notice).
    pub outcome: String,
    /// The key or extension code pressed, if any.
    pub key: Option<String>,
    /// How much of the menu's prompt was heard: `full`, `interrupted`, `unfinished`.
    pub prompt: String,
}

/// `number` with every digit (of any script) but the last `keep` replaced by `*` (for exports to people who
/// need the shape, not the number); other characters stay.
pub fn mask_number(number: &str, keep: usize) -> String {
    // Any script's digits (and other numerals): hiding too much is harmless, too little not.
    let digits = number.chars().filter(|c| c.is_numeric()).count();
    let mut hide = digits.saturating_sub(keep);
    number
        .chars()
        .map(|c| {
            if c.is_numeric() && hide > 0 {
                hide -= 1;
                '*'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_keys_name_no_other_file() {
        assert!(is_comment_key("comment-1764640000-0a1b2c3d"));
        for bad in [
            "comment-",
            "comment-../x",
            "comment-1.wav",
            "1764640000-0a1b2c3d",
            "comment-1/2",
            "comment-ABC",
            &format!("comment-{}", "1".repeat(60)),
        ] {
            assert!(!is_comment_key(bad), "{bad}");
        }
    }

    #[test]
    fn masking_keeps_the_last_digits_only() {
        assert_eq!(mask_number("+33612345678", 3), "+********678");
        assert_eq!(mask_number("1001", 4), "1001");
        assert_eq!(mask_number("12", 3), "12");
        assert_eq!(mask_number("alice", 3), "alice");
        assert_eq!(mask_number("06 12 34", 2), "** ** 34");
    }

    /// Digits of other scripts (fullwidth, Arabic-Indic) are digits too: a number written
    /// with them (the URI decoding lets any UTF-8 through) is masked like any other.
    #[test]
    fn masking_hides_digits_of_any_script() {
        assert_eq!(mask_number("+３３６１２３４５６７８", 3), "+********６７８");
        assert_eq!(mask_number("٠٦١٢٣٤٥٦", 2), "******٥٦");
    }
}
