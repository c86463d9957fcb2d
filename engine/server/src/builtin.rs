//! Built-in recordings of the prompts mailboxes need (`vm_*` and `digit_*`) and queue
//! announcements need (`queue_*` and the `number_*` words) in English, French and Spanish,
//! for configs that do not record their own. Rendered once with espeak-ng by `engine/server/builtin/generate.sh` (8 kHz µ-law WAV) and embedded.

macro_rules! table {
    ($($lang:literal: [$($name:literal),* $(,)?]),* $(,)?) => {
        &[$($(($lang, $name, include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"), "/builtin/", $lang, "/", $name, ".wav"
        )) as &[u8])),*),*]
    };
}

/// (language, prompt name, WAV bytes).
const PROMPTS: &[(&str, &str, &[u8])] = table! {
    "en": ["vm_offer_caller_id", "vm_enter_number", "vm_you_entered", "vm_confirm_number",
           "vm_invalid_number", "vm_review", "vm_cancelled", "vm_sorry",
           "digit_0", "digit_1", "digit_2", "digit_3", "digit_4",
           "digit_5", "digit_6", "digit_7", "digit_8", "digit_9",
           "queue_minute", "queue_minutes", "queue_position", "queue_position_end",
           "queue_wait", "number_0", "number_1", "number_2", "number_3", "number_4",
           "number_5", "number_6", "number_7", "number_8", "number_9", "number_10",
           "number_11", "number_12", "number_13", "number_14", "number_15", "number_16",
           "number_17", "number_18", "number_19", "number_20", "number_30", "number_40",
           "number_50", "number_60", "number_70", "number_80", "number_90", "number_hundred",
           "number_thousand"],
    "fr": ["vm_offer_caller_id", "vm_enter_number", "vm_you_entered", "vm_confirm_number",
           "vm_invalid_number", "vm_review", "vm_cancelled", "vm_sorry",
           "digit_0", "digit_1", "digit_2", "digit_3", "digit_4",
           "digit_5", "digit_6", "digit_7", "digit_8", "digit_9",
           "queue_minute", "queue_minutes", "queue_position", "queue_position_end",
           "queue_wait", "number_0", "number_1", "number_2", "number_3", "number_4",
           "number_5", "number_6", "number_7", "number_8", "number_9", "number_10",
           "number_11", "number_12", "number_13", "number_14", "number_15", "number_16",
           "number_20", "number_30", "number_40", "number_50", "number_60", "number_80",
           "number_and", "number_hundred", "number_thousand"],
    "es": ["vm_offer_caller_id", "vm_enter_number", "vm_you_entered", "vm_confirm_number",
           "vm_invalid_number", "vm_review", "vm_cancelled", "vm_sorry",
           "digit_0", "digit_1", "digit_2", "digit_3", "digit_4",
           "digit_5", "digit_6", "digit_7", "digit_8", "digit_9",
           "queue_minute", "queue_minutes", "queue_position", "queue_position_end",
           "queue_wait", "number_0", "number_1", "number_2", "number_3", "number_4",
           "number_5", "number_6", "number_7", "number_8", "number_9", "number_10",
           "number_11", "number_12", "number_13", "number_14", "number_15", "number_16",
           "number_17", "number_18", "number_19", "number_20", "number_21", "number_22",
           "number_23", "number_24", "number_25", "number_26", "number_27", "number_28",
           "number_29", "number_30", "number_40", "number_50", "number_60", "number_70",
           "number_80", "number_90", "number_100", "number_200", "number_300", "number_400",
           "number_500", "number_600", "number_700", "number_800", "number_900", "number_and",
           "number_hundred", "number_thousand"],
};

/// The built-in recording of `name` in `language` (a primary tag: `en`, `fr`, `es`).
pub fn prompt(name: &str, language: &str) -> Option<Vec<u8>> {
    PROMPTS
        .iter()
        .find(|(l, n, _)| *l == language && *n == name)
        .map(|(_, _, bytes)| bytes.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_decodes_and_covers_every_prompt_a_mailbox_or_queue_may_need() {
        for (lang, name, bytes) in PROMPTS {
            let p = ivr_audio::Prompt::from_wav(name, bytes)
                .unwrap_or_else(|e| panic!("{lang}/{name}: {e}"));
            assert!(p.frame_count() > 10, "{lang}/{name} is too short");
        }
        let mut names: Vec<&str> = ivr_menus::handoff::DIGITS.to_vec();
        names.extend(ivr_voicemail::SystemPrompt::ALL.iter().map(|p| p.name()));
        for lang in ["en", "fr", "es"] {
            for n in &names {
                assert!(prompt(n, lang).is_some(), "{lang}/{n} missing");
            }
        }
        assert!(prompt("vm_sorry", "de").is_none());
        for (lang, rule) in [
            ("en", ivr_menus::numbers::Rule::English),
            ("fr", ivr_menus::numbers::Rule::French),
            ("es", ivr_menus::numbers::Rule::Spanish),
        ] {
            let words = ivr_menus::numbers::words(rule);
            for n in ivr_menus::handoff::QUEUE_PROMPTS.iter().copied() {
                assert!(prompt(n, lang).is_some(), "{lang}/{n} missing");
            }
            for n in &words {
                assert!(prompt(n, lang).is_some(), "{lang}/{n} missing");
            }
        }
    }
}
