//! Text from callers on a terminal: `ivr callbacks list` and `show` print caller IDs,
//! numbers, variables and notes that came from outside. Control characters in them would
//! be obeyed by the terminal (`\x1b]0;…\x07` retitles the window, `\x1b[2J` clears it, a
//! carriage return overwrites what was printed), so they are shown escaped instead, as are
//! the bidirectional overrides that reorder what is displayed.

use std::borrow::Cow;

/// `text` with every control character (C0, DEL, C1) and bidirectional override escaped
/// (`\x1b`, `\u{202e}`); unchanged (and not copied) when there is none.
pub fn escaped(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !needs_escape(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_would_obey() {
        assert_eq!(escaped("+33 6 12"), "+33 6 12");
        assert!(matches!(escaped("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escaped("\u{1b}]0;owned\u{7}\u{1b}[2J"),
            "\\x1b]0;owned\\x07\\x1b[2J"
        );
        assert_eq!(escaped("a\rb\tc\n"), "a\\x0db\\x09c\\x0a");
        assert_eq!(escaped("\u{9b}31m \u{202e}"), "\\u{9b}31m \\u{202e}");
    }
}
