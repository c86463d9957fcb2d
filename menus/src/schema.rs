//! A JSON Schema (draft 2020-12) of the menu config, for editors (`ivr schema`).
//!
//! Editors with the YAML language server complete fields and underline mistakes when a file
//! starts with `# yaml-language-server: $schema=ivr-menus.schema.json`. The field lists come
//! from the same constants the compiler checks against, and a test keeps the two in step.

use crate::compile::{ACTION_FIELDS, MENU_FIELDS, PROMPT_FIELDS, TOP_FIELDS};
use crate::handoff::{DESTINATION_FIELDS, MAILBOX_FIELDS, QUEUE_FIELDS};

/// The schema, as pretty-printed JSON.
pub fn json() -> String {
    let names = r#"{ "oneOf": [ { "type": "string" }, { "type": "array", "items": { "type": "string" } } ] }"#;
    let key = r#""^([0-9*#A-Da-d])$""#;
    // Seconds, or a string with units as crate::duration reads it (5s, 1m30s, 500ms).
    let duration = r#""^(([0-9]+([.][0-9]+)?(ms|s|min|m|h))+|[0-9]+([.][0-9]+)?)$""#;
    format!(
        r##"{{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "ivr menu config",
  "type": "object",
  "additionalProperties": false,
  "required": ["entry", "menus"],
  "properties": {{
    "entry": {{ "type": "string", "description": "The menu a call starts in unless its called number has an entry point." }},
    "include": {{
      "$ref": "#/$defs/names",
      "description": "Other files (relative to this one) whose prompts and menus join this config; their prompt paths are relative to themselves."
    }},
    "callers": {{
      "type": "array",
      "description": "Caller routing, checked in order before entry points: the first rule whose pattern matches the caller ID wins ('*' matches anything; no caller ID is 'anonymous').",
      "items": {{ "type": "object", "additionalProperties": false, "required": ["match"],
        "properties": {{
          "match": {{ "$ref": "#/$defs/names" }},
          "goto": {{ "type": "string", "description": "Start in this menu." }},
          "reject": {{ "const": true, "description": "Refuse the call with 603 Decline before answering." }}
        }} }}
    }},
    "entries": {{
      "type": "object",
      "description": "Called number (the Request-URI user part) -> the menu such calls start in.",
      "additionalProperties": {{ "type": "string" }}
    }},
    "prompts": {{
      "type": "object",
      "description": "Prompt name -> a recording (a WAV file relative to the config, or its options), or one recording per language.",
      "additionalProperties": {{ "oneOf": [
        {{ "$ref": "#/$defs/recording" }},
        {{ "type": "object", "minProperties": 1,
           "not": {{ "anyOf": [ {{ "required": ["file"] }}, {{ "required": ["say"] }}, {{ "required": ["silence"] }}, {{ "required": ["tone"] }} ] }},
           "description": "Language (as in languages.enabled) -> recording.",
           "propertyNames": {{ "pattern": "^[a-z]{{2,3}}(-[A-Za-z0-9]{{2,8}})*$" }},
           "additionalProperties": {{ "$ref": "#/$defs/recording" }} }}
      ] }}
    }},
    "languages": {{
      "type": "object", "additionalProperties": false, "required": ["enabled"],
      "properties": {{
        "enabled": {{ "type": "array", "items": {{ "type": "string" }}, "description": "Languages offered; the first is the default." }},
        "fallback": {{ "type": "object", "additionalProperties": {{ "$ref": "#/$defs/names" }},
          "description": "Language -> languages to try when a prompt has no version in it (the default comes last anyway)." }}
      }}
    }},
    "schedules": {{
      "type": "object",
      "description": "Opening hours and holidays in a time zone, used by router menus.",
      "additionalProperties": {{ "type": "object", "additionalProperties": false, "required": ["timezone"],
        "properties": {{
          "timezone": {{ "type": "string", "description": "IANA name, e.g. Europe/Paris." }},
          "hours": {{ "type": "object", "description": "mon..sun or a range (mon-fri) -> HH:MM-HH:MM ranges.",
            "additionalProperties": {{ "$ref": "#/$defs/names" }} }},
          "holidays": {{ "type": "array", "items": {{ "type": "string" }},
            "description": "YYYY-MM-DD, YYYY-MM-DD from HH:MM, YYYY-MM-DD..YYYY-MM-DD, or every MM-DD." }},
          "holidays_ics": {{ "$ref": "#/$defs/names", "description": "iCalendar files (RFC 5545) whose events are holidays, with their recurrences (RRULE, RDATE, EXDATE; see docs/menus.md)." }}
        }} }}
    }},
    "menus": {{
      "type": "object",
      "additionalProperties": {{ "oneOf": [ {{ "$ref": "#/$defs/menu" }}, {{ "$ref": "#/$defs/router" }} ] }}
    }},
    "mailboxes": {{
      "type": "object",
      "description": "Voicemail mailboxes, reached by the action voicemail: NAME. Callers leave a message and a number to call back.",
      "additionalProperties": {{ "$ref": "#/$defs/mailbox" }}
    }},
    "queues": {{
      "type": "object",
      "description": "Call queues, reached by the action queue: NAME. Callers wait with music for an agent.",
      "additionalProperties": {{ "$ref": "#/$defs/queue" }}
    }},
    "destinations": {{
      "type": "object",
      "description": "Transfer destinations, reached by the action transfer: NAME. A URI alone, or its options.",
      "additionalProperties": {{ "oneOf": [ {{ "type": "string" }}, {{ "$ref": "#/$defs/destination" }} ] }}
    }},
    "agents": {{
      "type": "object",
      "description": "Call-center agents: each registers a phone (user and password, made by `ivr agents add`) or is reached at a fixed uri, and serves queues.",
      "additionalProperties": {{ "$ref": "#/$defs/agent" }}
    }},
    "surveys": {{
      "type": "object",
      "description": "Satisfaction surveys, asked by survey: NAME on a queue: or transfer: action when the agent or the destination hangs up: one key per question (or a recorded comment), stored with the call record.",
      "additionalProperties": {{ "$ref": "#/$defs/survey" }}
    }},
    "agent_codes": {{
      "type": "object", "additionalProperties": false,
      "description": "The numbers an agent's phone dials (authenticated with its password) to log in, log out and pause or unpause.",
      "properties": {{
        "login": {{ "type": "string", "pattern": "^[*#][0-9*#]{{1,15}}$", "default": "*41" }},
        "logout": {{ "type": "string", "pattern": "^[*#][0-9*#]{{1,15}}$", "default": "*42" }},
        "pause": {{ "type": "string", "pattern": "^[*#][0-9*#]{{1,15}}$", "default": "*43", "description": "Pause, or unpause when paused." }}
      }}
    }}
  }},
  "$defs": {{
    "names": {names},
    "agent": {{
      "type": "object", "additionalProperties": false,
      "oneOf": [ {{ "required": ["password"] }}, {{ "required": ["uri"] }} ],
      "properties": {{
        "user": {{ "type": ["string", "integer"], "pattern": "^[A-Za-z0-9_.!~*'()&=+$,;?/-]{{1,64}}$", "description": "The SIP user name its phone registers as (default: the agent's name)." }},
        "password": {{ "type": "string", "pattern": "^ha1:.+:[0-9a-fA-F]{{32}}:[0-9a-fA-F]{{64}}$", "description": "Digest hashes (MD5 and SHA-256) of the password, as `ivr agents add` prints them; never the password itself." }},
        "uri": {{ "type": "string", "description": "A static agent: reached at this sip:, sips: or tel: URI, without registering." }},
        "queues": {{ "type": "object", "description": "Queue name -> penalty (0, the default, is offered calls first; up to 1000).",
          "additionalProperties": {{ "type": ["integer", "null"], "minimum": 0, "maximum": 1000 }} }},
        "login": {{ "enum": ["on_register", "manual"], "default": "on_register", "description": "on_register: logged in when its phone registers (a static agent always); manual: only feature codes or staff log it in and out." }}
      }}
    }},
    "survey": {{
      "type": "object", "additionalProperties": false, "required": ["questions"],
      "properties": {{
        "questions": {{ "type": "array", "minItems": 1, "maxItems": 10, "items": {{ "$ref": "#/$defs/question" }} }},
        "thanks": {{ "$ref": "#/$defs/names", "description": "Played after the last question, before hanging up." }},
        "invalid": {{ "$ref": "#/$defs/names", "description": "Played after a key that answers nothing, before the question again." }},
        "retries": {{ "type": "integer", "minimum": 0, "maximum": 5, "default": 1, "description": "Times a question is asked again after an invalid key or a timeout, before it is left unanswered." }}
      }}
    }},
    "question": {{
      "type": "object", "additionalProperties": false, "required": ["name", "prompt"],
      "oneOf": [ {{ "required": ["keys"], "not": {{ "required": ["record"] }} }}, {{ "required": ["record"], "not": {{ "anyOf": [ {{ "required": ["keys"] }}, {{ "required": ["timeout"] }} ] }} }} ],
      "properties": {{
        "name": {{ "type": "string", "description": "The question's name in the call record." }},
        "prompt": {{ "$ref": "#/$defs/names" }},
        "record": {{ "type": "object", "additionalProperties": false,
          "description": "Answered by speaking: after the prompt a beep, then the caller's comment is recorded until #, the silence or the length; kept with the call record (at most one per survey). An empty comment is left unanswered.",
          "properties": {{
            "max_length": {{ "type": ["number", "string"], "pattern": {duration}, "minimum": 1, "maximum": 120, "default": 30, "description": "Longest comment, in seconds." }},
            "silence": {{ "type": ["number", "string"], "pattern": {duration}, "minimum": 1, "maximum": 30, "default": 3, "description": "Seconds of silence that end the comment." }}
          }} }},
        "keys": {{ "type": ["string", "integer"], "pattern": "^([0-9]-[0-9]|[0-9*#A-Da-d]+)$", "description": "The keys that answer: a range (1-5, 0-9) or the keys themselves (12)." }},
        "timeout": {{ "type": ["number", "string"], "pattern": {duration}, "minimum": 1, "maximum": 60, "default": 5, "description": "Seconds to wait for a key after the prompt." }}
      }}
    }},
    "recording": {{ "oneOf": [
      {{ "type": "string", "description": "A WAV file (16-bit PCM, u-law or A-law; 8-48 kHz)." }},
      {{ "type": "object", "additionalProperties": false,
         "oneOf": [ {{ "required": ["file"] }}, {{ "required": ["say"] }}, {{ "required": ["silence"] }}, {{ "required": ["tone"] }} ],
         "properties": {{
           "file": {{ "type": "string" }},
           "say": {{ "type": "string", "description": "Text spoken by espeak-ng, rendered once at load and cached." }},
           "voice": {{ "type": "string", "default": "en", "description": "espeak-ng voice or language for say: (en, en-us, fr, fr-be...)." }},
           "silence": {{ "type": ["number", "string"], "pattern": {duration}, "minimum": 0.02, "maximum": 60, "description": "Seconds of silence." }},
           "tone": {{ "enum": ["beep"], "description": "A generated tone: beep is 1 kHz for 250 ms." }},
           "interruptible": {{ "type": "boolean", "default": true, "description": "A key stops the prompt and acts at once." }},
           "type_ahead": {{ "enum": ["keep", "discard"], "default": "keep", "description": "Not interruptible: keys pressed meanwhile act when it ends (keep) or are dropped." }}
         }} }}
    ] }},
    "menu": {{
      "type": "object",
      "additionalProperties": false,
      "required": ["prompt"],
      "properties": {{
        "prompt": {{
          "description": "Played on entry and on every replay: names, {{ digits: variable }} read-outs (which need the prompts digit_0 ... digit_9) and {{ number: variable }} read-outs in the caller's language (which need the number_* words of en, fr or es).",
          "oneOf": [
            {{ "type": "string" }},
            {{ "type": "array", "items": {{ "oneOf": [
              {{ "type": "string" }},
              {{ "type": "object", "additionalProperties": false, "required": ["digits"], "properties": {{ "digits": {{ "type": "string" }} }} }},
              {{ "type": "object", "additionalProperties": false, "required": ["number"], "properties": {{ "number": {{ "type": "string" }} }} }}
            ] }} }}
          ]
        }},
        "timeout": {{ "type": ["number", "string"], "pattern": {duration}, "minimum": 1, "maximum": 60, "default": 5, "description": "Seconds to wait for a key after the prompt." }},
        "retries": {{
          "description": "Replays after a timeout or an invalid key: one number for both, or each apart.",
          "default": 2,
          "oneOf": [
            {{ "type": "integer", "minimum": 0 }},
            {{ "type": "object", "additionalProperties": false,
               "properties": {{ "no_input": {{ "type": "integer", "minimum": 0 }}, "invalid": {{ "type": "integer", "minimum": 0 }} }} }}
          ]
        }},
        "invalid": {{ "$ref": "#/$defs/names", "description": "Played on a key with no option." }},
        "no_input": {{ "$ref": "#/$defs/names", "description": "Played on a timeout." }},
        "options": {{
          "type": "object",
          "minProperties": 1,
          "propertyNames": {{ "pattern": {key} }},
          "additionalProperties": {{ "$ref": "#/$defs/action" }}
        }},
        "extensions": {{
          "type": "object",
          "description": "Codes of two or more keys dialled directly. A code may not start with an option key, nor be the start of another code.",
          "propertyNames": {{ "pattern": "^[0-9*A-Da-d]{{2,}}$" }},
          "additionalProperties": {{ "$ref": "#/$defs/action" }}
        }},
        "inter_digit_timeout": {{ "type": ["number", "string"], "pattern": {duration}, "minimum": 1, "maximum": 60, "default": 3, "description": "Longest pause between the digits of an extension or an entry." }},
        "collect": {{
          "type": "object", "additionalProperties": false, "required": ["into"],
          "description": "Collect digits into a variable instead of offering options; `then` runs after a valid entry.",
          "properties": {{
            "into": {{ "type": "string" }},
            "min": {{ "type": "integer", "minimum": 1, "default": 1 }},
            "max": {{ "type": "integer", "minimum": 1, "maximum": 32, "default": 20 }},
            "terminator": {{ "type": "string", "default": "#" }}
          }}
        }},
        "then": {{ "$ref": "#/$defs/action", "description": "With collect: what follows a valid entry." }},
        "on_failure": {{ "$ref": "#/$defs/action", "description": "When the retries are spent (default: hang up)." }}
      }}
    }},
    "router": {{
      "type": "object",
      "additionalProperties": false,
      "required": ["schedule", "open", "closed"],
      "description": "Plays nothing: sends the caller on by the schedule's state.",
      "properties": {{
        "schedule": {{ "type": "string" }},
        "open": {{ "type": "string" }},
        "closed": {{ "type": "string" }},
        "holiday": {{ "type": "string", "description": "Default: closed." }}
      }}
    }},
    "mailbox": {{
      "type": "object", "additionalProperties": false, "required": ["greeting"],
      "properties": {{
        "greeting": {{ "$ref": "#/$defs/names", "description": "Played first (leave your message after the tone)." }},
        "callback_number": {{ "enum": ["offer_caller_id", "ask", "caller_id", "none"], "default": "offer_caller_id",
          "description": "How the number to call back is obtained: offer the caller ID or another number, always ask, take the caller ID, or none." }},
        "number_pattern": {{ "type": "string", "default": "\\+?[0-9]{{3,15}}", "description": "A regular expression the whole callback number must match." }},
        "max_length": {{ "type": ["number", "string"], "pattern": {duration}, "minimum": 5, "maximum": 3600, "default": 120, "description": "Longest message, in seconds." }},
        "finish_key": {{ "type": "string", "default": "#", "description": "The key that ends the message." }},
        "silence": {{ "type": ["number", "string"], "pattern": {duration}, "minimum": 0, "maximum": 60, "default": 5, "description": "Seconds of silence that end the message (0: never)." }},
        "beep": {{ "type": "boolean", "default": true, "description": "A beep marks the start of recording." }},
        "review": {{ "type": "boolean", "default": false, "description": "Let the caller listen, then keep, re-record or cancel." }},
        "saved": {{ "$ref": "#/$defs/names", "description": "Played once the request is saved, before hanging up." }},
        "email": {{ "$ref": "#/$defs/names", "description": "Addresses that get each new request by e-mail with the recording attached (needs ivr serve --smtp-url)." }}
      }}
    }},
    "queue": {{
      "type": "object", "additionalProperties": false,
      "properties": {{
        "strategy": {{ "enum": ["ring_all", "round_robin", "longest_idle", "fewest_calls", "random", "linear"], "default": "longest_idle" }},
        "music": {{ "$ref": "#/$defs/names", "description": "Played in a loop while waiting (default: ringing tone)." }},
        "announcement": {{ "$ref": "#/$defs/names", "description": "Played every announce_every seconds." }},
        "whisper": {{ "$ref": "#/$defs/names", "description": "Played to the agent who answers before the caller is put through (the caller hears the music meanwhile)." }},
        "announce_every": {{ "type": ["number", "string"], "pattern": {duration}, "minimum": 5, "maximum": 600, "default": 30 }},
        "max_wait": {{ "type": ["number", "string"], "pattern": {duration}, "minimum": 10, "maximum": 7200, "default": 600, "description": "Seconds before on_timeout." }},
        "agent_timeout": {{ "type": ["number", "string"], "pattern": {duration}, "minimum": 5, "maximum": 120, "default": 15, "description": "Seconds one agent rings before the next is tried." }},
        "on_timeout": {{ "$ref": "#/$defs/action", "description": "After max_wait, or when the queue refuses or sends out the caller: goto, hangup, voicemail, transfer or queue (default: hang up)." }},
        "wrap_up": {{ "type": ["number", "string"], "pattern": {duration}, "minimum": 0, "maximum": 3600, "default": 0, "description": "Seconds of after-call work before an agent's next offer." }},
        "join_when_empty": {{ "enum": ["never", "none_logged_in", "none_active"], "default": "never", "description": "Refuse new callers (to on_timeout) when no member agent is logged in / logged in, unpaused and reachable." }},
        "leave_when_empty": {{ "enum": ["never", "none_logged_in", "none_active"], "default": "never", "description": "Send waiting callers to on_timeout when no member agent is logged in / logged in, unpaused and reachable." }},
        "max_no_answer": {{ "type": "integer", "minimum": 0, "maximum": 100, "default": 3, "description": "Unanswered offers in a row before an agent is paused (0: never)." }},
        "announce_position": {{ "type": "boolean", "default": true, "description": "Announcements tell the caller's place in line." }},
        "announce_wait": {{ "type": "boolean", "default": true, "description": "Announcements tell the estimated wait." }},
        "exit_keys": {{ "type": "object", "description": "Keys a waiting caller may press (0-9, *, #, A-D): callback (keep the place and be called back; needs callback:) or an action (goto, hangup, voicemail, transfer, queue).",
          "propertyNames": {{ "pattern": "^[0-9*#A-D]$" }},
          "additionalProperties": {{ "oneOf": [ {{ "const": "callback" }}, {{ "$ref": "#/$defs/action" }} ] }} }},
        "callback": {{ "type": "object", "additionalProperties": false, "required": ["via"], "description": "Queued callbacks: the caller keeps its place and is called back when an agent is free.",
          "properties": {{
            "via": {{ "type": "string", "description": "The destination (trunk or proxy) the call to the caller goes through; the caller's number becomes its user part." }},
            "retries": {{ "type": "integer", "minimum": 0, "maximum": 10, "default": 2, "description": "Further attempts after a failed call to the caller." }},
            "retry_delay": {{ "type": ["number", "string"], "pattern": {duration}, "minimum": 10, "maximum": 3600, "default": 60, "description": "Seconds before each further attempt." }},
            "number_pattern": {{ "type": "string", "default": "\\+?[0-9]{{3,15}}", "description": "A regular expression the whole number must match (only digits and a leading + are ever called)." }},
            "allowed_prefixes": {{ "$ref": "#/$defs/names", "description": "If set, a number must start with one of these (toll fraud)." }},
            "confirmed": {{ "$ref": "#/$defs/names", "description": "Played once the request is taken, before hanging up." }}
          }} }}
      }}
    }},
    "destination": {{
      "type": "object", "additionalProperties": false, "required": ["uri"],
      "properties": {{
        "uri": {{ "type": "string", "pattern": "^(sips?|tel):", "description": "sip:, sips: or tel: URI." }},
        "mode": {{ "enum": ["refer", "bridge"], "default": "refer", "description": "REFER (blind transfer by the caller's phone) or a call bridged by the engine." }},
        "ring_timeout": {{ "type": ["number", "string"], "pattern": {duration}, "minimum": 5, "maximum": 300, "default": 30, "description": "Bridged: how long the destination may ring." }},
        "on_failure": {{ "$ref": "#/$defs/action", "description": "Bridged: what the menu the transfer was chosen from does when the destination is busy, does not answer or refuses (default: replay that menu)." }},
        "username": {{ "type": "string", "description": "Digest user name for a destination or proxy that challenges (with password)." }},
        "password": {{ "type": "string", "description": "Digest password (keep the file unreadable to others)." }},
        "proxy": {{ "type": "string", "pattern": "^sips?:", "description": "Outbound proxy the INVITE goes through (sip:host:port;lr)." }}
      }}
    }},
    "action": {{
      "type": "object",
      "additionalProperties": false,
      "minProperties": 1,
      "maxProperties": 3,
      "properties": {{
        "goto": {{ "type": "string", "description": "Go to a menu." }},
        "play": {{ "$ref": "#/$defs/names", "description": "Play, then replay this menu." }},
        "hangup": {{ "oneOf": [ {{ "type": "null" }}, {{ "$ref": "#/$defs/names" }} ], "description": "Play a goodbye (or nothing), then hang up." }},
        "repeat": {{ "const": true, "description": "Replay this menu." }},
        "back": {{ "const": true, "description": "Go back to the menu the caller came from (replay this one if none)." }},
        "voicemail": {{ "type": "string", "description": "Leave a callback request in this mailbox." }},
        "queue": {{ "description": "Wait in this queue for an agent: its name (priority 0), or {{ name, priority, survey }}.",
          "oneOf": [ {{ "type": "string" }},
            {{ "type": "object", "additionalProperties": false, "required": ["name"],
              "properties": {{
                "name": {{ "type": "string", "description": "The queue." }},
                "priority": {{ "type": "integer", "minimum": 0, "maximum": 9, "default": 0, "description": "Higher is served first; equal priorities in arrival order. A literal: actions take no variables." }},
                "survey": {{ "type": "string", "description": "Ask this survey (surveys:) when the agent hangs up." }}
              }} }} ] }},
        "transfer": {{ "description": "Transfer the call to this destination: its name, or {{ name, survey }}.",
          "oneOf": [ {{ "type": "string" }},
            {{ "type": "object", "additionalProperties": false, "required": ["name"],
              "properties": {{
                "name": {{ "type": "string", "description": "The destination." }},
                "survey": {{ "type": "string", "description": "Ask this survey (surveys:) when the destination of a bridged transfer hangs up." }}
              }} }} ] }},
        "language": {{ "type": "string", "description": "Switch the caller's language; alone, replays this menu in it." }},
        "set": {{ "type": "object", "description": "Set variables (name: value); alone, replays this menu.",
          "propertyNames": {{ "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" }},
          "additionalProperties": {{ "type": ["string", "number", "boolean"] }} }}
      }}
    }}
  }}
}}
"##
    )
}

/// The field names the schema lists for (top level, a menu, an action, a prompt's options,
/// a mailbox, a queue, a destination), for the sync test.
pub fn fields() -> [&'static [&'static str]; 7] {
    [
        TOP_FIELDS,
        MENU_FIELDS,
        ACTION_FIELDS,
        PROMPT_FIELDS,
        MAILBOX_FIELDS,
        QUEUE_FIELDS,
        DESTINATION_FIELDS,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &serde_json::Value) -> Vec<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }

    #[test]
    fn schema_is_json_and_lists_exactly_the_fields_the_compiler_knows() {
        let v: serde_json::Value = serde_json::from_str(&json()).unwrap();
        let sorted = |f: &[&str]| {
            let mut v: Vec<String> = f.iter().map(|s| s.to_string()).collect();
            v.sort();
            v
        };
        let [top, menu, action, prompt, mailbox, queue, destination] = fields();
        assert_eq!(
            keys(&v["$defs"]["agent"]["properties"]),
            sorted(crate::agents::AGENT_FIELDS)
        );
        assert_eq!(keys(&v["$defs"]["mailbox"]["properties"]), sorted(mailbox));
        assert_eq!(keys(&v["$defs"]["queue"]["properties"]), sorted(queue));
        assert_eq!(
            keys(&v["$defs"]["destination"]["properties"]),
            sorted(destination)
        );
        assert_eq!(keys(&v["properties"]), sorted(top));
        assert_eq!(keys(&v["$defs"]["menu"]["properties"]), sorted(menu));
        assert_eq!(keys(&v["$defs"]["action"]["properties"]), sorted(action));
        assert_eq!(
            keys(&v["$defs"]["action"]["properties"]["queue"]["oneOf"][1]["properties"]),
            sorted(crate::handoff::QUEUE_ACTION_FIELDS)
        );
        assert_eq!(
            keys(&v["$defs"]["action"]["properties"]["transfer"]["oneOf"][1]["properties"]),
            sorted(crate::survey::TRANSFER_ACTION_FIELDS)
        );
        assert_eq!(
            keys(&v["$defs"]["survey"]["properties"]),
            sorted(crate::survey::SURVEY_FIELDS)
        );
        assert_eq!(
            keys(&v["$defs"]["question"]["properties"]),
            sorted(crate::survey::QUESTION_FIELDS)
        );
        assert_eq!(
            keys(&v["$defs"]["question"]["properties"]["record"]["properties"]),
            sorted(crate::survey::RECORD_FIELDS)
        );
        assert_eq!(
            keys(&v["$defs"]["recording"]["oneOf"][1]["properties"]),
            sorted(prompt)
        );
    }
}

#[cfg(test)]
mod committed {
    /// `docs/ivr-menus.schema.json` (which the examples point their editors at) is current.
    #[test]
    fn the_committed_schema_is_up_to_date() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/ivr-menus.schema.json");
        let committed = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            committed,
            super::json(),
            "run `ivr schema > docs/ivr-menus.schema.json`"
        );
    }
}
