//! Loading menu configs: the embedded demo, or YAML files on disk.

use ivr_menus::{CompileError, Menus};
use std::path::{Path, PathBuf};

/// The embedded default config (the bilingual demo).
pub const DEMO_CONFIG: &str = include_str!("../../../examples/demo/config.yaml");

/// The demo's prompt files, by the path the config gives them.
const DEMO_PROMPTS: &[(&str, &[u8])] = &[
    (
        "prompts/operator_en.wav",
        include_bytes!("../../../examples/demo/prompts/operator_en.wav"),
    ),
    (
        "prompts/operator_fr.wav",
        include_bytes!("../../../examples/demo/prompts/operator_fr.wav"),
    ),
    (
        "prompts/vm_greeting_fr.wav",
        include_bytes!("../../../examples/demo/prompts/vm_greeting_fr.wav"),
    ),
    (
        "prompts/vm_greeting_en.wav",
        include_bytes!("../../../examples/demo/prompts/vm_greeting_en.wav"),
    ),
    (
        "prompts/vm_saved_fr.wav",
        include_bytes!("../../../examples/demo/prompts/vm_saved_fr.wav"),
    ),
    (
        "prompts/vm_saved_en.wav",
        include_bytes!("../../../examples/demo/prompts/vm_saved_en.wav"),
    ),
    (
        "prompts/lang_fr.wav",
        include_bytes!("../../../examples/demo/prompts/lang_fr.wav"),
    ),
    (
        "prompts/lang_en.wav",
        include_bytes!("../../../examples/demo/prompts/lang_en.wav"),
    ),
    (
        "prompts/main_en.wav",
        include_bytes!("../../../examples/demo/prompts/main_en.wav"),
    ),
    (
        "prompts/main_fr.wav",
        include_bytes!("../../../examples/demo/prompts/main_fr.wav"),
    ),
    (
        "prompts/sales_en.wav",
        include_bytes!("../../../examples/demo/prompts/sales_en.wav"),
    ),
    (
        "prompts/sales_fr.wav",
        include_bytes!("../../../examples/demo/prompts/sales_fr.wav"),
    ),
    (
        "prompts/support_en.wav",
        include_bytes!("../../../examples/demo/prompts/support_en.wav"),
    ),
    (
        "prompts/support_fr.wav",
        include_bytes!("../../../examples/demo/prompts/support_fr.wav"),
    ),
    (
        "prompts/hours_en.wav",
        include_bytes!("../../../examples/demo/prompts/hours_en.wav"),
    ),
    (
        "prompts/hours_fr.wav",
        include_bytes!("../../../examples/demo/prompts/hours_fr.wav"),
    ),
    (
        "prompts/invalid_en.wav",
        include_bytes!("../../../examples/demo/prompts/invalid_en.wav"),
    ),
    (
        "prompts/invalid_fr.wav",
        include_bytes!("../../../examples/demo/prompts/invalid_fr.wav"),
    ),
    (
        "prompts/noinput_en.wav",
        include_bytes!("../../../examples/demo/prompts/noinput_en.wav"),
    ),
    (
        "prompts/noinput_fr.wav",
        include_bytes!("../../../examples/demo/prompts/noinput_fr.wav"),
    ),
    (
        "prompts/goodbye_en.wav",
        include_bytes!("../../../examples/demo/prompts/goodbye_en.wav"),
    ),
    (
        "prompts/goodbye_fr.wav",
        include_bytes!("../../../examples/demo/prompts/goodbye_fr.wav"),
    ),
];

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read. (The I/O error is part of the message and not a
    /// `source`, so a chain printed with `{:#}` does not say it twice.)
    #[error("{path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The config has errors; each is listed as `file:line:column: path: message`.
    #[error("{}\n{path}: {} error(s)", errors.iter().map(|e| format!("{}:{e}", error_file(path, e))).collect::<Vec<_>>().join("\n"), errors.len())]
    Invalid {
        /// The file.
        path: String,
        /// Every error found.
        errors: Vec<CompileError>,
    },
}

/// The file an error is in: the main config, or an included file (named relative to it).
fn error_file(main: &str, e: &CompileError) -> String {
    match &e.file {
        None => main.to_string(),
        Some(included) => match Path::new(main)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            Some(dir) => dir.join(included).display().to_string(),
            None => included.clone(),
        },
    }
}

/// Compile the embedded demo.
pub fn load_demo() -> Result<Menus, ConfigError> {
    ivr_menus::compile_full(
        DEMO_CONFIG,
        &mut |file| {
            DEMO_PROMPTS
                .iter()
                .find(|(name, _)| *name == file)
                .map(|(_, bytes)| bytes.to_vec())
                .ok_or_else(|| "not embedded in the binary".to_string())
        },
        &mut |_, _| Err("the embedded demo uses no text-to-speech".to_string()),
        &mut crate::builtin::prompt,
    )
    .map_err(|errors| ConfigError::Invalid {
        path: "<embedded demo>".into(),
        errors,
    })
}

/// Compile a config file; prompt paths are relative to the file's folder. `say:` prompts
/// are rendered with espeak-ng into the default cache folder.
pub fn load_file(path: &Path) -> Result<Menus, ConfigError> {
    load_file_cached(path, &default_tts_cache())
}

/// The text-to-speech cache used when no data folder is given (`ivr check`, `ivr test`).
pub fn default_tts_cache() -> PathBuf {
    std::env::temp_dir().join("ivr-tts-cache")
}

/// Compile a config file, rendering `say:` prompts into (or reading them from) `tts_cache`.
pub fn load_file_cached(path: &Path, tts_cache: &Path) -> Result<Menus, ConfigError> {
    load_file_tracked(path, tts_cache).0
}

/// What [`load_file_unrendered`] found besides the menus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeechCheck {
    /// The config has `say:` prompts.
    pub uses_say: bool,
    /// espeak-ng is not installed here, so their voices could not be checked either.
    pub espeak_missing: bool,
}

/// Compile a config file to validate it (`ivr check`, `ivr graph`, `ivr staff`): `say:`
/// prompts are not rendered (each stands for a second of silence), but their voices are
/// checked when espeak-ng is installed. A machine that only validates configs needs no
/// speech synthesizer.
pub fn load_file_unrendered(path: &Path) -> Result<(Menus, SpeechCheck), ConfigError> {
    let mut check = SpeechCheck {
        uses_say: false,
        espeak_missing: false,
    };
    let mut voices: Option<Result<String, String>> = None;
    let result = load_with(path, &mut |_, voice| {
        check.uses_say = true;
        let list = voices.get_or_insert_with(|| {
            espeak(|c| c.arg("--voices")).map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        });
        match list {
            Ok(list) if !voice_listed(list, voice) => Err(format!(
                "espeak-ng has no voice '{voice}' (see `espeak-ng --voices`)"
            )),
            Ok(_) => Ok(ivr_audio::wav::encode_pcm16(8000, &[0; 8000])),
            Err(_) => {
                check.espeak_missing = true;
                Ok(ivr_audio::wav::encode_pcm16(8000, &[0; 8000]))
            }
        }
    })
    .0?;
    Ok((result, check))
}

/// [`load_file_cached`], also saying which files the load read (or tried to read), so a
/// watcher reloads when one of them changes and for nothing else.
pub fn load_file_tracked(path: &Path, tts_cache: &Path) -> (Result<Menus, ConfigError>, Sources) {
    load_with(path, &mut |text, voice| speak(tts_cache, text, voice))
}

/// Compile a config file with `say` for its `say:` prompts.
fn load_with(
    path: &Path,
    say: &mut ivr_menus::model::Speaker<'_>,
) -> (Result<Menus, ConfigError>, Sources) {
    let mut sources = Sources::default();
    let bytes = std::fs::read(path);
    sources.add(path, bytes.as_deref().ok());
    let text = match bytes.and_then(|b| {
        String::from_utf8(b).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }) {
        Ok(t) => t,
        Err(error) => {
            let e = ConfigError::Read {
                path: path.to_path_buf(),
                error,
            };
            return (Err(e), sources);
        }
    };
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let result = ivr_menus::compile_full(
        &text,
        &mut |file| {
            let full = base.join(file);
            let bytes = std::fs::read(&full);
            sources.add(&full, bytes.as_deref().ok());
            bytes.map_err(|e| e.to_string())
        },
        say,
        &mut crate::builtin::prompt,
    )
    .map_err(|errors| ConfigError::Invalid {
        path: path.display().to_string(),
        errors,
    });
    (result, sources)
}

/// The files a config load read: the config, its includes, prompts and calendars, each with
/// a digest of what it held then (`None`: it could not be read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    files: Vec<(PathBuf, Option<u64>)>,
}

impl Sources {
    fn add(&mut self, path: &Path, bytes: Option<&[u8]>) {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        if self.files.iter().all(|(p, _)| *p != path) {
            self.files.push((path, bytes.map(|b| fnv1a(b.iter()))));
        }
    }

    /// The files (absolute paths).
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|(p, _)| p.as_path())
    }

    /// Whether `path` is one of the files.
    pub fn contains(&self, path: &Path) -> bool {
        self.files.iter().any(|(p, _)| p == path)
    }

    /// Whether any file now holds something else than when it was loaded (or appeared, or
    /// disappeared). Reads every file.
    pub fn changed(&self) -> bool {
        self.files
            .iter()
            .any(|(path, digest)| std::fs::read(path).ok().map(|b| fnv1a(b.iter())) != *digest)
    }
}

/// Render `text` in `voice` with espeak-ng, once: the WAV is kept in `cache` under a name
/// derived from voice and text, and read from there next time (and by the next reload).
pub fn speak(cache: &Path, text: &str, voice: &str) -> Result<Vec<u8>, String> {
    let key = fnv1a(voice.as_bytes().iter().chain(&[0]).chain(text.as_bytes()));
    let file = cache.join(format!("{key:016x}.wav"));
    if let Ok(bytes) = std::fs::read(&file) {
        return Ok(bytes);
    }
    // espeak-ng quietly falls back to its default voice for a name it does not know; a
    // French prompt read by an English voice is worse than an error, so check first.
    if !espeak_has_voice(voice)? {
        return Err(format!(
            "espeak-ng has no voice '{voice}' (see `espeak-ng --voices`)"
        ));
    }
    std::fs::create_dir_all(cache)
        .map_err(|e| format!("text-to-speech cache {}: {e}", cache.display()))?;
    let tmp = cache.join(format!("{key:016x}.{}.tmp", std::process::id()));
    let out = espeak(|c| c.args(["-v", voice, "-w"]).arg(&tmp).arg("--").arg(text))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(format!("espeak-ng failed for voice '{voice}': {why}"));
    }
    std::fs::rename(&tmp, &file)
        .map_err(|e| format!("text-to-speech cache {}: {e}", file.display()))?;
    std::fs::read(&file).map_err(|e| e.to_string())
}

/// Run espeak-ng with the arguments `args` adds; a missing espeak-ng is said plainly.
fn espeak(
    args: impl FnOnce(&mut std::process::Command) -> &mut std::process::Command,
) -> Result<std::process::Output, String> {
    args(&mut std::process::Command::new("espeak-ng"))
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                "say: needs espeak-ng (Debian: apt-get install espeak-ng), which is not installed"
                    .to_string()
            }
            _ => format!("could not run espeak-ng: {e}"),
        })
}

/// Whether `espeak-ng --voices` lists `voice` as a language (`fr`, `en-us`) or a voice file.
fn espeak_has_voice(voice: &str) -> Result<bool, String> {
    let out = espeak(|c| c.arg("--voices"))?;
    Ok(voice_listed(&String::from_utf8_lossy(&out.stdout), voice))
}

/// Whether the output of `espeak-ng --voices` lists `voice`.
fn voice_listed(list: &str, voice: &str) -> bool {
    list.lines().skip(1).any(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let language = cols.get(1).is_some_and(|l| l.eq_ignore_ascii_case(voice));
        let file = cols.iter().any(|c| {
            c.rsplit('/')
                .next()
                .is_some_and(|f| f.eq_ignore_ascii_case(voice))
                && c.contains('/')
        });
        language || file
    })
}

/// FNV-1a, 64 bits: a stable name for cache files (not a security measure).
fn fnv1a<'a>(bytes: impl Iterator<Item = &'a u8>) -> u64 {
    bytes.fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_compiles_with_every_prompt() {
        let m = load_demo().unwrap();
        assert_eq!(m.menu(m.entry()).name, "language");
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn invalid_files_list_each_error_with_file_line_and_column() {
        let dir = std::env::temp_dir().join(format!("ivr-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bad.yaml");
        std::fs::write(&file, "entry: mian\nmenus:\n  main:\n    prompt: []\n    options:\n      \"1\": { goto: main }\n").unwrap();
        let text = load_file(&file).unwrap_err().to_string();
        let f = file.display();
        assert_eq!(
            text,
            format!("{f}:1:8: entry: unknown menu 'mian' (did you mean 'main'?)\n{f}: 1 error(s)")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn say_prompts_are_rendered_once_and_cached() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.yaml");
        std::fs::write(
            &cfg,
            "entry: m\nprompts:\n  hi: { say: \"Hello, and welcome.\", voice: en-us }\nmenus:\n  m:\n    prompt: hi\n    options:\n      \"1\": { repeat: true }\n",
        )
        .unwrap();
        let cache = dir.path().join("tts");
        let m = load_file_cached(&cfg, &cache).unwrap();
        let frames = m.prompt(m.find_prompt("hi").unwrap()).frame_count();
        assert!(frames > 25, "about a second of speech, got {frames} frames");
        let cached: Vec<_> = std::fs::read_dir(&cache).unwrap().collect();
        assert_eq!(cached.len(), 1);
        // A second load reads the cache: same audio, and it works without espeak-ng.
        let again = load_file_cached(&cfg, &cache).unwrap();
        assert_eq!(
            again.prompt(again.find_prompt("hi").unwrap()).frame_count(),
            frames
        );
        std::fs::write(
            &cfg,
            std::fs::read_to_string(&cfg)
                .unwrap()
                .replace("en-us", "no-such-voice"),
        )
        .unwrap();
        let e = load_file_cached(&cfg, &cache).unwrap_err().to_string();
        assert!(
            e.contains(
                "prompts.hi: say \"Hello, and welcome.\": espeak-ng has no voice 'no-such-voice'"
            ),
            "{e}"
        );
    }

    #[test]
    fn included_files_bring_menus_and_prompts_and_their_errors_name_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sales/prompts")).unwrap();
        std::fs::write(
            dir.path().join("sales/prompts/s.wav"),
            ivr_audio::wav::encode_pcm16(8000, &[100; 800]),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("main.yaml"),
            "entry: main\ninclude: [sales/sales.yaml]\nmenus:\n  main:\n    prompt: s\n    options:\n      \"1\": { goto: sales }\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("sales/sales.yaml"),
            "prompts:\n  s: prompts/s.wav\nmenus:\n  sales:\n    prompt: s\n    options:\n      \"*\": { goto: main }\n",
        )
        .unwrap();
        let m = load_file(&dir.path().join("main.yaml")).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(
            m.menu(m.find("sales").unwrap()).file.as_deref(),
            Some("sales/sales.yaml")
        );
        // Mistakes in the included file are reported against it; a menu defined twice too.
        std::fs::write(
            dir.path().join("sales/sales.yaml"),
            "prompts:\n  s: prompts/s.wav\nmenus:\n  main:\n    prompt: s\n    options: { \"1\": { goto: main } }\n  sales:\n    prompt: s\n    optoins: {}\n",
        )
        .unwrap();
        let text = load_file(&dir.path().join("main.yaml"))
            .unwrap_err()
            .to_string();
        let sales = dir.path().join("sales/sales.yaml").display().to_string();
        assert!(
            text.contains(&format!(
                "{sales}:5:5: menus.main: menu defined again (first at line 5, column 5)"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "{sales}:9:5: menus.sales.optoins: unknown field 'optoins'"
            )),
            "{text}"
        );
    }

    #[test]
    fn file_errors_name_the_file() {
        let e = load_file(Path::new("/nonexistent/ivr.yaml")).unwrap_err();
        assert!(e.to_string().starts_with("/nonexistent/ivr.yaml:"), "{e}");
    }
}
