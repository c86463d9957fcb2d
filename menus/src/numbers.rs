//! Numbers read out as words ("three hundred forty-two"), built from per-language prompts
//! named `number_<word>`: `{ number: variable }` in a menu's prompt list.
//!
//! Each language family composes numbers its own way from a small set of recorded words;
//! [`tokens`] gives the prompt names for a number, [`words`] the names a family needs.
//! Numbers from 0 to 999,999 are read as numbers; anything else is read digit by digit
//! with the `number_0` ... `number_9` prompts.

/// How a language composes numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// English: "three hundred forty two", "twelve thousand".
    English,
    /// French: "soixante et onze", "quatre-vingt-dix", "deux cent", "mille".
    French,
    /// Spanish: "treinta y uno", "ciento cinco", "doscientos", "mil".
    Spanish,
}

impl Rule {
    /// The rule for a language tag (`en`, `fr-CA`, `es-MX`...), if there is one.
    pub fn for_language(tag: &str) -> Option<Rule> {
        let primary = tag.split(['-', '_']).next().unwrap_or(tag);
        match primary.to_ascii_lowercase().as_str() {
            "en" => Some(Rule::English),
            "fr" => Some(Rule::French),
            "es" => Some(Rule::Spanish),
            _ => None,
        }
    }
}

/// The largest number read as words.
pub const MAX: u32 = 999_999;

/// Every prompt name the rule may use, for the validator.
pub fn words(rule: Rule) -> Vec<String> {
    let n = |v: u32| format!("number_{v}");
    let mut out: Vec<String> = Vec::new();
    match rule {
        Rule::English => {
            out.extend((0..20).map(n));
            out.extend((2..10).map(|t| n(t * 10)));
            out.extend(["number_hundred".into(), "number_thousand".into()]);
        }
        Rule::French => {
            out.extend((0..17).map(n));
            out.extend([20, 30, 40, 50, 60, 80].map(n));
            out.extend([
                "number_and".into(),
                "number_hundred".into(),
                "number_thousand".into(),
            ]);
        }
        Rule::Spanish => {
            out.extend((0..30).map(n));
            out.extend((3..10).map(|t| n(t * 10)));
            out.push(n(100));
            out.extend((2..10).map(|h| n(h * 100)));
            out.extend([
                "number_and".into(),
                "number_hundred".into(),
                "number_thousand".into(),
            ]);
        }
    }
    out
}

/// The prompt names that read `text` in `rule`: as a number when it is one (0 to
/// [`MAX`], no sign, no leading zeros), else digit by digit (non-digits skipped).
pub fn tokens(rule: Rule, text: &str) -> Vec<String> {
    let is_number = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    match text.parse::<u32>() {
        Ok(n) if is_number && n <= MAX => {
            let mut out = Vec::new();
            say(rule, n, &mut out);
            out.into_iter().map(name).collect()
        }
        _ => text
            .chars()
            .filter(char::is_ascii_digit)
            .map(|c| format!("number_{c}"))
            .collect(),
    }
}

/// One word of a read-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word {
    N(u32),
    And,
    Hundred,
    Thousand,
}

fn name(w: Word) -> String {
    match w {
        Word::N(v) => format!("number_{v}"),
        Word::And => "number_and".into(),
        Word::Hundred => "number_hundred".into(),
        Word::Thousand => "number_thousand".into(),
    }
}

fn say(rule: Rule, n: u32, out: &mut Vec<Word>) {
    if n >= 1000 {
        let (k, rest) = (n / 1000, n % 1000);
        // "mille" and "mil" stand alone for one thousand; English says "one thousand".
        if k > 1 || rule == Rule::English {
            say(rule, k, out);
        }
        out.push(Word::Thousand);
        if rest > 0 {
            say(rule, rest, out);
        }
        return;
    }
    if n >= 100 {
        let (h, rest) = (n / 100, n % 100);
        match rule {
            Rule::English => {
                out.push(Word::N(h));
                out.push(Word::Hundred);
            }
            Rule::French => {
                if h > 1 {
                    out.push(Word::N(h));
                }
                out.push(Word::Hundred);
            }
            Rule::Spanish => match (h, rest) {
                (1, 0) => out.push(Word::N(100)),  // cien
                (1, _) => out.push(Word::Hundred), // ciento
                _ => out.push(Word::N(h * 100)),   // doscientos...
            },
        }
        if rest > 0 {
            say(rule, rest, out);
        }
        return;
    }
    match rule {
        Rule::English => {
            if n < 20 {
                out.push(Word::N(n));
            } else {
                out.push(Word::N(n / 10 * 10));
                if !n.is_multiple_of(10) {
                    out.push(Word::N(n % 10));
                }
            }
        }
        Rule::French => french_below_100(n, out),
        Rule::Spanish => {
            if n < 30 {
                out.push(Word::N(n));
            } else {
                out.push(Word::N(n / 10 * 10));
                if !n.is_multiple_of(10) {
                    out.push(Word::And);
                    out.push(Word::N(n % 10));
                }
            }
        }
    }
}

/// French below 100: 17-19 are dix-sept..., 70-79 soixante-dix..., 80-99 quatre-vingt...;
/// "et" before un (21, 31... 61) and before onze in 71.
fn french_below_100(n: u32, out: &mut Vec<Word>) {
    let below_20 = |n: u32, out: &mut Vec<Word>| {
        if n <= 16 {
            out.push(Word::N(n));
        } else {
            out.push(Word::N(10));
            out.push(Word::N(n - 10));
        }
    };
    match n {
        0..=19 => below_20(n, out),
        20..=69 => {
            out.push(Word::N(n / 10 * 10));
            match n % 10 {
                0 => {}
                1 => out.extend([Word::And, Word::N(1)]),
                u => out.push(Word::N(u)),
            }
        }
        70..=79 => {
            out.push(Word::N(60));
            if n == 71 {
                out.push(Word::And);
            }
            below_20(n - 60, out);
        }
        _ => {
            out.push(Word::N(80));
            if n > 80 {
                below_20(n - 80, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(rule: Rule, text: &str) -> String {
        tokens(rule, text)
            .iter()
            .map(|t| t.trim_start_matches("number_"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn english() {
        let r = Rule::English;
        assert_eq!(read(r, "0"), "0");
        assert_eq!(read(r, "13"), "13");
        assert_eq!(read(r, "42"), "40 2");
        assert_eq!(read(r, "100"), "1 hundred");
        assert_eq!(read(r, "342"), "3 hundred 40 2");
        assert_eq!(read(r, "1005"), "1 thousand 5");
        assert_eq!(read(r, "12000"), "12 thousand");
        assert_eq!(read(r, "999999"), "9 hundred 90 9 thousand 9 hundred 90 9");
    }

    #[test]
    fn french() {
        let r = Rule::French;
        assert_eq!(read(r, "16"), "16");
        assert_eq!(read(r, "17"), "10 7");
        assert_eq!(read(r, "21"), "20 and 1");
        assert_eq!(read(r, "45"), "40 5");
        assert_eq!(read(r, "70"), "60 10");
        assert_eq!(read(r, "71"), "60 and 11");
        assert_eq!(read(r, "77"), "60 10 7");
        assert_eq!(read(r, "80"), "80");
        assert_eq!(read(r, "81"), "80 1");
        assert_eq!(read(r, "91"), "80 11");
        assert_eq!(read(r, "99"), "80 10 9");
        assert_eq!(read(r, "100"), "hundred");
        assert_eq!(read(r, "201"), "2 hundred 1");
        assert_eq!(read(r, "1000"), "thousand");
        assert_eq!(read(r, "2021"), "2 thousand 20 and 1");
    }

    #[test]
    fn spanish() {
        let r = Rule::Spanish;
        assert_eq!(read(r, "21"), "21");
        assert_eq!(read(r, "31"), "30 and 1");
        assert_eq!(read(r, "100"), "100");
        assert_eq!(read(r, "105"), "hundred 5");
        assert_eq!(read(r, "250"), "200 50");
        assert_eq!(read(r, "1000"), "thousand");
        assert_eq!(read(r, "3500"), "3 thousand 500");
    }

    #[test]
    fn other_text_is_read_digit_by_digit() {
        assert_eq!(read(Rule::English, "007"), "0 0 7");
        assert_eq!(read(Rule::English, "+33 1 23"), "3 3 1 2 3");
        assert_eq!(read(Rule::English, "1000000"), "1 0 0 0 0 0 0");
        assert_eq!(read(Rule::English, ""), "");
    }

    #[test]
    fn every_token_used_is_a_word_of_the_rule() {
        for rule in [Rule::English, Rule::French, Rule::Spanish] {
            let known = words(rule);
            for n in (0..=2000).chain([9999, 10_001, 71_071, 999_999]) {
                for t in tokens(rule, &n.to_string()) {
                    assert!(known.contains(&t), "{rule:?} {n}: {t} is not in words()");
                }
            }
        }
    }

    #[test]
    fn languages_pick_their_rule() {
        assert_eq!(Rule::for_language("fr-CA"), Some(Rule::French));
        assert_eq!(Rule::for_language("en"), Some(Rule::English));
        assert_eq!(Rule::for_language("es_MX"), Some(Rule::Spanish));
        assert_eq!(Rule::for_language("de"), None);
    }
}
