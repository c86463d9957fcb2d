//! Loading menu configs: the embedded demo, or YAML files on disk.

use ivr_menus::{CompileError, Menus};
use std::path::{Path, PathBuf};

/// The embedded default config (the bilingual demo).
pub const DEMO_CONFIG: &str = include_str!("../../../examples/demo/config.yaml");

/// The demo's prompt files, by the path the config gives them.
const DEMO_PROMPTS: &[(&str, &[u8])] = &[
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
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config has errors; each is listed as `file:line:column: path: message`.
    #[error("{}\n{path}: {} error(s)", errors.iter().map(|e| format!("{path}:{e}")).collect::<Vec<_>>().join("\n"), errors.len())]
    Invalid {
        /// The file.
        path: String,
        /// Every error found.
        errors: Vec<CompileError>,
    },
}

/// Compile the embedded demo.
pub fn load_demo() -> Result<Menus, ConfigError> {
    ivr_menus::compile(DEMO_CONFIG, &mut |file| {
        DEMO_PROMPTS
            .iter()
            .find(|(name, _)| *name == file)
            .map(|(_, bytes)| bytes.to_vec())
            .ok_or_else(|| "not embedded in the binary".to_string())
    })
    .map_err(|errors| ConfigError::Invalid {
        path: "<embedded demo>".into(),
        errors,
    })
}

/// Compile a config file; prompt paths are relative to the file's folder.
pub fn load_file(path: &Path) -> Result<Menus, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    ivr_menus::compile(&text, &mut |file| {
        std::fs::read(base.join(file)).map_err(|e| e.to_string())
    })
    .map_err(|errors| ConfigError::Invalid {
        path: path.display().to_string(),
        errors,
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
    fn file_errors_name_the_file() {
        let e = load_file(Path::new("/nonexistent/ivr.yaml")).unwrap_err();
        assert!(e.to_string().starts_with("/nonexistent/ivr.yaml:"), "{e}");
    }
}
