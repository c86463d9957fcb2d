//! A callback request: what a caller left, and what staff need to call them back.

/// Identifies one recording while it is written (engine-unique, cheap to copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordingId(pub u64);

/// A callback request as the engine hands it over for storing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "store", derive(serde::Serialize, serde::Deserialize))]
pub struct CallbackRequest {
    /// Its id: `<unix seconds>-<8 hex digits>`, also the name of its WAV file.
    pub id: String,
    /// The mailbox it was left in.
    pub mailbox: String,
    /// The caller ID (P-Asserted-Identity from a trusted proxy, else From), if any.
    pub caller_id: Option<String>,
    /// The number the caller dialled (Request-URI user part), if any.
    pub called: Option<String>,
    /// The SIP Call-ID, to find the call in the logs.
    pub call_id: String,
    /// When the call reached the mailbox (seconds since the Unix epoch).
    pub received_at: u64,
    /// The number to call back, if the caller gave or confirmed one.
    pub callback_number: Option<String>,
    /// The message's length in milliseconds (0: no message, only a number).
    pub duration_ms: u64,
    /// The caller's language, if the config has languages.
    pub language: Option<String>,
    /// The menus the caller went through, in order.
    pub menu_path: Vec<String>,
    /// The call's variables (`set:` and collected digits).
    pub variables: Vec<(String, String)>,
    /// Whether the caller hung up before the end (the message is kept as far as it went).
    pub hung_up: bool,
    /// Whether a message was recorded.
    pub has_message: bool,
    /// Who gets it by e-mail (the mailbox's addresses when the call came).
    #[cfg_attr(feature = "store", serde(default))]
    pub email_to: Vec<String>,
    /// A voicemail deposit, or a queued callback (which keeps a place in a queue).
    #[cfg_attr(feature = "store", serde(default))]
    pub kind: RequestKind,
    /// For a queued callback, its queue.
    #[cfg_attr(feature = "store", serde(default))]
    pub queue: Option<String>,
    /// For a queued callback, the caller's priority in its queue (higher is served first;
    /// 0 for a voicemail).
    #[cfg_attr(feature = "store", serde(default))]
    pub priority: u8,
}

/// What left a callback request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "store",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum RequestKind {
    /// A caller left it in a mailbox (with or without a message).
    #[default]
    Voicemail,
    /// A caller waiting in a queue pressed the callback key: the engine calls them back
    /// when their turn comes.
    QueueCallback,
}

impl RequestKind {
    /// Its name in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Voicemail => "voicemail",
            RequestKind::QueueCallback => "queue_callback",
        }
    }

    /// The kind of a name (anything unknown is a voicemail).
    pub fn parse(s: &str) -> RequestKind {
        if s == "queue_callback" {
            RequestKind::QueueCallback
        } else {
            RequestKind::Voicemail
        }
    }
}
