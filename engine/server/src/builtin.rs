//! Built-in recordings of the prompts mailboxes need (`vm_*` and `digit_*`) in English,
//! French and Spanish, for configs that do not record their own. Rendered once with
//! espeak-ng by `engine/server/builtin/generate.sh` (8 kHz µ-law WAV) and embedded.

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
           "digit_5", "digit_6", "digit_7", "digit_8", "digit_9"],
    "fr": ["vm_offer_caller_id", "vm_enter_number", "vm_you_entered", "vm_confirm_number",
           "vm_invalid_number", "vm_review", "vm_cancelled", "vm_sorry",
           "digit_0", "digit_1", "digit_2", "digit_3", "digit_4",
           "digit_5", "digit_6", "digit_7", "digit_8", "digit_9"],
    "es": ["vm_offer_caller_id", "vm_enter_number", "vm_you_entered", "vm_confirm_number",
           "vm_invalid_number", "vm_review", "vm_cancelled", "vm_sorry",
           "digit_0", "digit_1", "digit_2", "digit_3", "digit_4",
           "digit_5", "digit_6", "digit_7", "digit_8", "digit_9"],
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
    fn every_builtin_decodes_and_covers_every_prompt_a_mailbox_may_need() {
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
    }
}
