//! E-mail notifications: each new callback request in a mailbox with `email:` addresses is
//! sent to them through SMTP, with the recording attached, from the same durable outbox as
//! webhooks (retried after 1, 2, 4 ... seconds, at most an hour apart, across restarts).

use crate::outbox::{self, Channel};
use crate::status::Status;
use ivr_voicemail::store::Store;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing::warn;

/// How mail is sent.
#[derive(Debug, Clone)]
pub struct Mail {
    /// `smtp://HOST:PORT`, `smtps://...` or `smtp://...?tls=required`, with credentials as
    /// `smtp://USER:PASSWORD@HOST` (lettre's URL form).
    pub url: String,
    /// The sender.
    pub from: String,
}

/// The message for one outbox payload (`{"to": [...], "request": {...}}`).
pub fn message(
    from: &str,
    payload: &str,
    voicemail_dir: &std::path::Path,
) -> Result<Message, String> {
    let v: serde_json::Value = serde_json::from_str(payload).map_err(|e| e.to_string())?;
    let r = &v["request"];
    let text = |k: &str| r[k].as_str().unwrap_or("").to_string();
    let number = r["callback_number"].as_str().unwrap_or("no number given");
    let mut b = Message::builder()
        .from(from.parse::<Mailbox>().map_err(|e| format!("from: {e}"))?)
        .subject(format!("Callback request: {number} ({})", text("mailbox")));
    for to in v["to"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str())
    {
        b = b.to(to.parse::<Mailbox>().map_err(|e| format!("to {to}: {e}"))?);
    }
    let seconds = r["duration_ms"].as_u64().unwrap_or(0) as f64 / 1000.0;
    let body = format!(
        "A caller left a callback request.\n\nCall back: {number}\nCaller ID: {}\nMailbox: {}\nMessage: {}\nMenus: {}\nRequest: {}\n{}",
        r["caller_id"].as_str().unwrap_or("none"),
        text("mailbox"),
        if r["has_message"].as_bool() == Some(true) {
            format!("{seconds:.1} s, attached")
        } else {
            "none (only a number)".to_string()
        },
        r["menu_path"]
            .as_array()
            .map(|p| p
                .iter()
                .filter_map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(" > "))
            .unwrap_or_default(),
        text("id"),
        if r["recovered"].as_bool() == Some(true) {
            "\nThis request was recovered after a restart; its end may be missing.\n"
        } else {
            ""
        }
    );
    let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(body));
    if r["has_message"].as_bool() == Some(true) {
        let id = text("id");
        // The id was made by the engine; the file is named by it.
        if id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            let wav = std::fs::read(voicemail_dir.join(format!("{id}.wav")))
                .map_err(|e| format!("the recording: {e}"))?;
            parts = parts.singlepart(Attachment::new(format!("{id}.wav")).body(
                wav,
                ContentType::parse("audio/wav").map_err(|e| e.to_string())?,
            ));
        }
    }
    b.multipart(parts).map_err(|e| e.to_string())
}

/// Deliver e-mail from the outbox for as long as the process runs.
pub async fn deliver(store: Store, mail: Mail, voicemail_dir: PathBuf, status: Arc<Status>) {
    let transport = match AsyncSmtpTransport::<Tokio1Executor>::from_url(&mail.url) {
        Ok(t) => t.timeout(Some(Duration::from_secs(20))).build(),
        Err(e) => {
            warn!(error = %e, "bad --smtp-url; e-mails stay in the outbox");
            return;
        }
    };
    let channel = Channel {
        event: "email",
        delivered: "callback e-mail sent",
        failed: "callback e-mail not sent; will retry",
        batch: 20,
    };
    outbox::run(store, channel, &status.mails, |n| {
        let message = message(&mail.from, &n.payload, &voicemail_dir);
        let transport = &transport;
        async move {
            transport
                .send(message?)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
    .await
}
