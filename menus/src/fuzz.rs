//! Fuzz target body for the menu compiler (operator input): never panics, and a config
//! that compiles has every reference in range.

/// Compile arbitrary text; prompt files all load as a short tone.
pub fn compile_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let wav = ivr_audio::wav::encode_pcm16(8000, &[100; 160]);
    match crate::compile(text, &mut |_| Ok(wav.clone())) {
        Ok(menus) => {
            let _ = menus.menu(menus.entry());
            for i in 0..menus.len() {
                let m = menus.menu(crate::MenuId::nth(i));
                let fixed = m.prompt.iter().filter_map(|p| match p {
                    crate::model::PromptItem::Fixed(id) => Some(id),
                    crate::model::PromptItem::Digits(_) | crate::model::PromptItem::Number(_) => {
                        None
                    }
                });
                for p in fixed.chain(&m.invalid).chain(&m.no_input) {
                    let _ = menus.prompt(*p);
                }
            }
        }
        Err(errors) => {
            for e in errors {
                let _ = e.to_string();
            }
        }
    }
}
