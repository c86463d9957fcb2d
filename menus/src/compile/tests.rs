//! Tests of the compiler, and the helpers other modules' tests compile configs with.

use super::*;

pub(crate) const YAML: &str = r#"
entry: main
prompts:
  welcome: welcome.wav
  sales: sales.wav
  bye: bye.wav
  oops: oops.wav
menus:
  main:
    prompt: welcome
    timeout: 3
    retries: 2
    invalid: oops
    options:
      "1": { goto: sales }
      "2": { play: [sales, sales] }
      "9": { hangup: bye }
    on_failure: { hangup: bye }
  sales:
    prompt: [sales]
    options:
      "*": { goto: main }
      "0": { repeat: true }
"#;

/// Built-in prompts for tests: a short recording for any name and language.
pub(crate) fn builtin(_name: &str, _language: &str) -> Option<Vec<u8>> {
    Some(ivr_audio::wav::encode_pcm16(8000, &[500; 800]))
}

/// [`compile`] with [`loader`], no TTS, and [`builtin`] prompts.
pub(crate) fn compile_test(yaml: &str) -> Result<Menus, Vec<CompileError>> {
    compile_full(
        yaml,
        &mut loader,
        &mut |_, _| Err("no TTS in tests".into()),
        &mut builtin,
    )
}

pub(crate) fn loader(file: &str) -> Result<Vec<u8>, String> {
    let len = match file {
        "welcome.wav" => 1600,
        "sales.wav" => 800,
        _ => 400,
    };
    Ok(ivr_audio::wav::encode_pcm16(8000, &vec![1000; len]))
}

#[test]
fn compiles_the_example() {
    let m = compile(YAML, &mut loader).unwrap();
    let main = m.menu(m.entry());
    assert_eq!(main.name, "main");
    assert_eq!(main.timeout, Duration::from_secs(3));
    assert_eq!(
        main.options[1],
        Some(Action::Goto(m.find("sales").unwrap()))
    );
    assert!(matches!(&main.options[2], Some(Action::Play(p)) if p.len() == 2));
    assert_eq!(
        main.prompt[0],
        PromptItem::Fixed(m.find_prompt("welcome").unwrap())
    );
    assert_eq!(
        m.prompt(m.find_prompt("welcome").unwrap()).frame_count(),
        10
    );
    let sales = m.menu(m.find("sales").unwrap());
    assert_eq!(sales.options[10], Some(Action::Goto(m.entry())));
    assert_eq!(sales.on_failure, Action::Hangup(vec![]));
}

#[test]
fn reports_every_error_with_its_path() {
    let bad = YAML
        .replace("{ goto: sales }", "{ goto: sals }")
        .replace("\"9\": { hangup: bye }", "\"99\": { hangup: bye }")
        .replace("invalid: oops", "invalid: oopz")
        .replace("timeout: 3", "timeout: 0");
    let errs = compile(&bad, &mut loader).unwrap_err();
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    // In file order, each with line:column of the offending value.
    assert_eq!(
        text,
        [
            "11:14: menus.main.timeout: timeout 0 s is outside 1 to 60 s",
            "13:14: menus.main.invalid: unknown prompt 'oopz' (did you mean 'oops'?)",
            "15:20: menus.main.options.1.goto: unknown menu 'sals' (did you mean 'sales'?)",
            "17:13: menus.main.options.99: '99' is not a key (use 0-9, *, #, A-D)",
        ]
    );
}

#[test]
fn many_mistakes_are_all_reported_at_once() {
    let yaml = r#"entry: mian
prompts:
  welcome: welcome.wav
  gone: missing.wav
menus:
  main:
    prompt: welcome
    timeout: soon
    retries: 2
    retries: 3
    optoins: {}
    options:
      "1": { goto: sales }
      "2": { play: welcom }
      "3": { goto: main, play: welcome }
"#;
    let errs = compile(yaml, &mut |f| {
        if f == "missing.wav" {
            Err("no such file".into())
        } else {
            loader(f)
        }
    })
    .unwrap_err();
    let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "1:8: entry: unknown menu 'mian' (did you mean 'main'?)",
            "4:9: prompts.gone: missing.wav: no such file",
            "8:14: menus.main.timeout: expected a number of seconds or a duration (5s, 1m30s), found a string",
            "10:5: menus.main.retries: duplicate key (first at line 9, column 5)",
            "11:5: menus.main.optoins: unknown field 'optoins' (did you mean 'options'?; expected one of prompt, timeout, retries, invalid, no_input, options, extensions, inter_digit_timeout, collect, then, on_failure)",
            "13:20: menus.main.options.1.goto: unknown menu 'sales'",
            "14:20: menus.main.options.2.play: unknown prompt 'welcom' (did you mean 'welcome'?)",
            "15:12: menus.main.options.3: an action needs exactly one of goto, play, hangup, repeat, back, voicemail, queue, transfer (language and set may come with it)",
        ]
    );
}

/// Per-language prompts, the fallback chain, and the check that every enabled language
/// finds a version.
#[test]
fn languages_with_fallbacks() {
    let yaml = r#"
entry: main
languages:
  enabled: [fr, fr-CA, en]
  fallback:
    fr-CA: [fr]
prompts:
  hello: { fr: welcome.wav, en: sales.wav }
  beep: bye.wav
menus:
  main:
    prompt: [hello, beep]
    options:
      "1": { language: en }
      "2": { language: fr-CA, goto: main }
"#;
    let m = compile(yaml, &mut loader).unwrap();
    assert_eq!(m.languages(), ["fr", "fr-CA", "en"]);
    let PromptItem::Fixed(hello) = m.menu(m.entry()).prompt[0] else {
        panic!()
    };
    let frames = |lang| m.prompt_in(hello, lang).frame_count();
    assert_eq!(frames(0), 10, "fr: welcome.wav (1600 samples)");
    assert_eq!(frames(1), 10, "fr-CA falls back to fr");
    assert_eq!(frames(2), 5, "en: sales.wav (800 samples)");
    let PromptItem::Fixed(beep) = m.menu(m.entry()).prompt[1] else {
        panic!()
    };
    assert_eq!(
        m.prompt_in(beep, 2).frame_count(),
        3,
        "one recording serves every language"
    );
    assert_eq!(
        m.menu(m.entry()).options[1],
        Some(Action::Language(2, Box::new(Action::Repeat)))
    );
    // Without the fallback, fr-CA has no version of hello.
    let missing = yaml.replace("  fallback:\n    fr-CA: [fr]\n", "");
    let e = compile(&missing, &mut loader).unwrap_err();
    assert_eq!(
        e[0].to_string(),
        "6:10: prompts.hello: no version for language 'fr-CA' (add a recording, a say: text to speak it by TTS, or a fallback in languages.fallback)"
    );
    let bad = yaml.replace("{ language: en }", "{ language: de }");
    let e = compile(&bad, &mut loader).unwrap_err();
    assert!(
        e[0].to_string()
            .contains("options.1.language: unknown language 'de'"),
        "{}",
        e[0]
    );
}

#[test]
fn ambiguous_extensions_are_refused() {
    let with = |ext: &str| {
        YAML.replace(
            "      \"9\": { hangup: bye }\n",
            &format!("      \"9\": {{ hangup: bye }}\n    extensions:\n{ext}"),
        )
    };
    let e = compile(&with("      \"101\": { goto: sales }\n"), &mut loader).unwrap_err();
    assert!(
        e[0].to_string()
            .contains("ambiguous: '101' starts with 1, which is an option key"),
        "{}",
        e[0]
    );
    let e = compile(
        &with("      \"30\": { goto: sales }\n      \"301\": { goto: main }\n"),
        &mut loader,
    )
    .unwrap_err();
    assert!(
        e[0].to_string()
            .contains("ambiguous: '301' and '30': one is the start of the other"),
        "{}",
        e[0]
    );
    let e = compile(
        &with("      \"3\": { goto: sales }\n      \"3#1\": { goto: main }\n"),
        &mut loader,
    )
    .unwrap_err();
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        compile(
            &with("      \"301\": { goto: sales }\n      \"302\": { goto: main }\n"),
            &mut loader
        )
        .is_ok()
    );
}

#[test]
fn router_mistakes_and_cycles_are_refused() {
    let sched =
        "schedules:\n  office:\n    timezone: UTC\n    hours: { mon-fri: [\"09:00-17:00\"] }\n";
    let bad = YAML.replace("entry: main\n", &format!("entry: main\n{sched}"))
        + "  r:\n    schedule: ofice\n    open: main\n    closed: mian\n";
    let e: Vec<String> = compile(&bad, &mut loader)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        e.iter()
            .any(|x| x.contains("menus.r.closed: unknown menu 'mian' (did you mean 'main'?)")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|x| x
                .contains("menus.r.schedule: unknown schedule 'ofice' (did you mean 'office'?)")),
        "{e:?}"
    );
    let cycle = YAML.replace("entry: main\n", &format!("entry: main\n{sched}"))
        + "  r1:\n    schedule: office\n    open: r2\n    closed: main\n  r2:\n    schedule: office\n    open: main\n    closed: r1\n";
    let e = compile(&cycle, &mut loader).unwrap_err();
    assert!(
        e[0].to_string()
            .contains("router menus send the caller round in a circle: r1 -> r2 -> r1"),
        "{}",
        e[0]
    );
}

#[test]
fn caller_routing_rules_match_in_order() {
    let yaml = YAML.replace(
            "entry: main\n",
            "entry: main\ncallers:\n  - match: [\"+33611*\", \"*999\"]\n    goto: sales\n  - match: [anonymous, \"+1900*\"]\n    reject: true\n",
        );
    let m = compile(&yaml, &mut loader).unwrap();
    let sales = m.find("sales").unwrap();
    assert_eq!(m.route(None, Some("+33611223344")), Route::Menu(sales));
    assert_eq!(m.route(None, Some("555999")), Route::Menu(sales));
    assert_eq!(m.route(None, Some("+19005551234")), Route::Reject);
    assert_eq!(
        m.route(None, None),
        Route::Reject,
        "no caller ID counts as anonymous"
    );
    assert_eq!(m.route(None, Some("+33140000000")), Route::Menu(m.entry()));
    let bad = YAML.replace(
        "entry: main\n",
        "entry: main\ncallers:\n  - match: [x]\n    goto: sals\n    reject: true\n",
    );
    let e = compile(&bad, &mut loader).unwrap_err();
    assert!(
        e[0].to_string().contains(
            "callers.0: 'this rule' is not one of a rule with exactly one of goto, reject"
        ),
        "{}",
        e[0]
    );
}

#[test]
fn entry_points_by_called_number() {
    let yaml = YAML.replace(
        "entry: main\n",
        "entry: main\nentries:\n  \"+33100\": sales\n  help: mian\n",
    );
    let e = compile(&yaml, &mut loader).unwrap_err();
    assert_eq!(
        e[0].to_string(),
        "5:9: entries.help: unknown menu 'mian' (did you mean 'main'?)"
    );
    let m = compile(&yaml.replace("help: mian", "help: main"), &mut loader).unwrap();
    assert_eq!(m.menu(m.entry_for(Some("+33100"))).name, "sales");
    assert_eq!(m.menu(m.entry_for(Some("other"))).name, "main");
    assert_eq!(m.menu(m.entry_for(None)).name, "main");
}

#[test]
fn silence_and_beep_prompts_need_no_file() {
    let yaml = YAML.replace(
        "  oops: oops.wav\n",
        "  oops: oops.wav\n  pause: { silence: 1.5 }\n  beep: { tone: beep }\n",
    );
    let m = compile(&yaml, &mut loader).unwrap();
    let id = |n: &str| PromptId((0..).find(|i| m.prompt_name(PromptId(*i)) == n).unwrap());
    assert_eq!(m.prompt(id("pause")).frame_count(), 75);
    assert_eq!(m.prompt(id("beep")).frame_count(), 13);
    let bad = YAML.replace("  oops: oops.wav\n", "  oops: oops.wav\n  x: { tone: siren }\n  y: { silence: 0 }\n  z: { silence: 1, file: a.wav }\n");
    let e: Vec<String> = compile(&bad, &mut loader)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(e[0].contains("'siren' is not one of beep"), "{e:?}");
}

#[test]
fn unreadable_prompt_names_the_file() {
    let e = compile(YAML, &mut |f| {
        if f == "bye.wav" {
            Err("no such file".into())
        } else {
            loader(f)
        }
    })
    .unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].to_string(), "6:8: prompts.bye: bye.wav: no such file");
}
