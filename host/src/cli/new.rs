//! `flumen new`: a guest project that builds as it stands, in Rust, Python,
//! JavaScript or C, as an interceptor or a sink.
//!
//! The project carries its own copy of the contract (`wit/pipeline.wit`),
//! a `build.sh`, sample events for `flumen test` and a README with the
//! pipeline table that uses it. The templates live in `host/templates/` and
//! are compiled into the binary, so `flumen new` works wherever flumen is
//! installed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A guest language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Rust, with wit-bindgen.
    Rust,
    /// Python, with componentize-py.
    Python,
    /// JavaScript, with componentize-js.
    Js,
    /// C, with wit-bindgen's C bindings and wasi-libc.
    C,
}

/// A guest world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Filters, transforms, routes.
    Interceptor,
    /// An interceptor reading the fields of typed events (after
    /// `schema_decode`).
    TypedInterceptor,
    /// Delivers.
    Sink,
}

/// Why a project could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot name a crate, a module and a file.
    #[error(
        "`{0}` cannot be a guest name: use lower-case letters, digits and `_` or `-`, \
         starting with a letter"
    )]
    BadName(String),
    /// The directory exists; nothing is overwritten.
    #[error("{} already exists; choose another name or remove it", .0.display())]
    Exists(PathBuf),
    /// Writing failed.
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

const WIT: &str = include_str!("../../../wit/pipeline.wit");
const README: &str = include_str!("../../templates/README.md");
const EVENTS: &str = include_str!("../../templates/events.jsonl");
const TYPED_EVENTS: &str = include_str!("../../templates/typed_events.jsonl");

impl Lang {
    fn label(self) -> &'static str {
        match self {
            Self::Rust => "Rust",
            Self::Python => "Python",
            Self::Js => "JavaScript",
            Self::C => "C",
        }
    }

    /// `(path in the project, source)` of the language's guest helper,
    /// which reads a batch's columns event by event. The project gets its
    /// own copy, as it gets its own copy of the contract: it then builds
    /// without flumen's repository.
    fn helper(self) -> (&'static str, &'static str) {
        match self {
            Self::Rust => (
                "src/columns.rs",
                include_str!("../../../guests/common/src/columns.rs"),
            ),
            Self::Python => (
                "flumen_guest.py",
                include_str!("../../../guests/helpers/python/flumen_guest.py"),
            ),
            Self::Js => (
                "flumen-guest.js",
                include_str!("../../../guests/helpers/js/flumen-guest.js"),
            ),
            Self::C => (
                "flumen_guest.h",
                include_str!("../../../guests/helpers/c/flumen_guest.h"),
            ),
        }
    }

    /// `(path in the project, template)` of the sources and build script.
    fn files(self, kind: Kind, name: &str) -> Vec<(String, &'static str)> {
        // Per language: the source file, its interceptor and sink templates,
        // the build script.
        let (helper_path, helper) = self.helper();
        let (source, interceptor, typed, sink, build) = match self {
            Self::Rust => (
                "src/lib.rs".to_owned(),
                include_str!("../../templates/rust/interceptor.rs"),
                include_str!("../../templates/rust/typed_interceptor.rs"),
                include_str!("../../templates/rust/sink.rs"),
                include_str!("../../templates/rust/build.sh"),
            ),
            Self::Python => (
                "app.py".to_owned(),
                include_str!("../../templates/python/interceptor.py"),
                include_str!("../../templates/python/typed_interceptor.py"),
                include_str!("../../templates/python/sink.py"),
                include_str!("../../templates/python/build.sh"),
            ),
            Self::Js => (
                format!("{name}.js"),
                include_str!("../../templates/js/interceptor.js"),
                include_str!("../../templates/js/typed_interceptor.js"),
                // The repository's own JavaScript sink, as it stands: the
                // end-to-end tests run it against a broker.
                include_str!("../../../guests/examples/js/log_sink/log_sink.js"),
                include_str!("../../templates/js/build.sh"),
            ),
            Self::C => (
                format!("{name}.c"),
                include_str!("../../templates/c/interceptor.c"),
                include_str!("../../templates/c/typed_interceptor.c"),
                include_str!("../../templates/c/sink.c"),
                include_str!("../../templates/c/build.sh"),
            ),
        };
        let mut files = vec![
            (helper_path.to_owned(), helper),
            (
                source,
                match kind {
                    Kind::Interceptor => interceptor,
                    Kind::TypedInterceptor => typed,
                    Kind::Sink => sink,
                },
            ),
            ("build.sh".to_owned(), build),
        ];
        if self == Self::Rust {
            files.push((
                "Cargo.toml".to_owned(),
                include_str!("../../templates/rust/Cargo.toml"),
            ));
        }
        files
    }
}

/// Whether `name` can be a crate, a file and a component name.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// What the README says the scaffold does, and how to try it.
fn readme_parts(lang: Lang, kind: Kind, name: &str) -> [(&'static str, String); 5] {
    let writes_files = kind == Kind::Sink && lang != Lang::Js;
    let what = match (kind, writes_files) {
        (Kind::TypedInterceptor, _) => "It reads typed events, decoded by `schema_decode` (an \
            Avro, Protobuf or JSON Schema value becomes a JSON object), and drops every event \
            whose field `field` (default `status`) equals `equals` (default `cancelled`): edit it \
            to do what you need with the fields. See docs/schemas.md."
            .to_owned(),
        (Kind::Interceptor, _) => "It drops every event whose value contains the config key \
            `drop_containing` (default `DROP`) and keeps the rest: edit it to do what you need."
            .to_owned(),
        (Kind::Sink, true) => format!(
            "It appends one line per event, `offset<TAB>value`, to `path` (default \
             `/out/{name}-%{{partition}}.txt`): edit it to deliver where you need."
        ),
        (Kind::Sink, false) => "It writes one line per event, `offset<TAB>value`, into \
            flumen's log (a JavaScript component cannot open files yet): edit it to deliver \
            where you need."
            .to_owned(),
    };
    let (test_args, table) = match (kind, writes_files) {
        (Kind::TypedInterceptor, _) => (
            String::new(),
            format!(
                "[schema_registry]\nurls = [\"http://localhost:8081\"]\n\n\
                 [[pipeline.interceptor]]\nname = \"decode\"\ncomponent = \"guests/schema_decode.wasm\"\n\
                 schema_registry = true\n\n\
                 [[pipeline.interceptor]]\nname = \"{name}\"\ncomponent = \"{name}/{name}.wasm\"\n\
                 config = {{ field = \"status\", equals = \"cancelled\" }}"
            ),
        ),
        (Kind::Interceptor, _) => (
            String::new(),
            format!(
                "[[pipeline.interceptor]]\nname = \"{name}\"\ncomponent = \"{name}/{name}.wasm\"\n\
                 config = {{ drop_containing = \"DROP\" }}"
            ),
        ),
        (Kind::Sink, true) => (
            " --dir out=/out   # after mkdir out".to_owned(),
            format!(
                "[[pipeline.sink]]\nname = \"{name}\"\ncomponent = \"{name}/{name}.wasm\"\n\
                 config = {{ path = \"/out/{name}-%{{partition}}.txt\" }}\n\
                 dirs = [{{ host = \"out\", guest = \"/out\" }}]"
            ),
        ),
        (Kind::Sink, false) => (
            String::new(),
            format!(
                "[[pipeline.sink]]\nname = \"{name}\"\ncomponent = \"{name}/{name}.wasm\"\n\
                 config = {{ level = \"info\" }}"
            ),
        ),
    };
    [
        ("{{helper}}", lang.helper().0.to_owned()),
        ("{{language}}", lang.label().to_owned()),
        ("{{what}}", what),
        ("{{test_args}}", test_args),
        ("{{pipeline}}", table),
    ]
}

/// Creates the project `name` under `parent`. Returns its directory.
pub fn create(lang: Lang, kind: Kind, name: &str, parent: &Path) -> Result<PathBuf, ScaffoldError> {
    if !valid_name(name) {
        return Err(ScaffoldError::BadName(name.to_owned()));
    }
    let dir = parent.join(name);
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir));
    }
    let world = match kind {
        Kind::Interceptor | Kind::TypedInterceptor => "interceptor",
        Kind::Sink => "sink",
    };
    // A typed Rust guest parses the decoded value with serde_json.
    let dependencies = match (lang, kind) {
        (Lang::Rust, Kind::TypedInterceptor) => "serde_json = \"1\"\n",
        _ => "",
    };
    let crate_name = name.replace('-', "_");
    let fill = |text: &str| {
        let mut text = text
            .replace("{{name}}", name)
            .replace("{{crate}}", &crate_name)
            .replace("{{world}}", world)
            .replace("{{dependencies}}", dependencies)
            .replace("{{kind}}", world);
        for (key, value) in readme_parts(lang, kind, name) {
            text = text.replace(key, &value);
        }
        text
    };
    let mut files: Vec<(String, String)> = lang
        .files(kind, name)
        .into_iter()
        .map(|(path, template)| (path, fill(template)))
        .collect();
    files.push(("wit/pipeline.wit".into(), WIT.to_owned()));
    files.push(("README.md".into(), fill(README)));
    let events = match kind {
        Kind::TypedInterceptor => TYPED_EVENTS,
        _ => EVENTS,
    };
    files.push(("events.jsonl".into(), fill(events)));
    for (path, text) in files {
        let path = dir.join(path);
        let write = || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, text)?;
            if path.extension().is_some_and(|e| e == "sh") {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
            }
            Ok(())
        };
        write().map_err(|source| ScaffoldError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(dir)
}

/// Runs `flumen new`.
pub fn command(
    lang: NewLang,
    kind: NewKind,
    name: &str,
    parent: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let lang = match lang {
        NewLang::Rust => Lang::Rust,
        NewLang::Python => Lang::Python,
        NewLang::Js => Lang::Js,
        NewLang::C => Lang::C,
    };
    let kind = match kind {
        NewKind::Interceptor => Kind::Interceptor,
        NewKind::TypedInterceptor => Kind::TypedInterceptor,
        NewKind::Sink => Kind::Sink,
    };
    let dir = create(lang, kind, name, parent)?;
    println!("created {}", dir.display());
    println!(
        "next: read {}, then run its build.sh",
        dir.join("README.md").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `--lang` of `flumen new`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum NewLang {
    Rust,
    Python,
    Js,
    C,
}

/// `--kind` of `flumen new`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum NewKind {
    Interceptor,
    /// An interceptor reading the fields of typed events (after schema_decode).
    TypedInterceptor,
    Sink,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_suit_every_language() {
        for good in ["my_sink", "audit-log", "s3"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "9lives", "My", "a b", "../x", "a.b"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn every_project_carries_its_language_s_helper() {
        let tmp = tempfile::tempdir().unwrap();
        for (lang, helper, use_) in [
            (Lang::Rust, "src/columns.rs", "columns!(batch)"),
            (Lang::Python, "flumen_guest.py", "from flumen_guest import "),
            (Lang::Js, "flumen-guest.js", "from \"./flumen-guest.js\""),
            (Lang::C, "flumen_guest.h", "#include \"flumen_guest.h\""),
        ] {
            for kind in [Kind::Interceptor, Kind::Sink] {
                let name = format!("g{}", tmp.path().read_dir().unwrap().count());
                let dir = create(lang, kind, &name, tmp.path()).unwrap();
                assert!(dir.join(helper).is_file(), "{lang:?} {kind:?}: no {helper}");
                let (source, template) = lang.files(kind, &name).swap_remove(1);
                assert!(
                    template.contains(use_),
                    "{lang:?} {kind:?}: {source} does not use {helper}"
                );
            }
        }
    }

    #[test]
    fn a_project_is_complete_and_never_overwrites() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = create(Lang::Rust, Kind::Sink, "my-sink", tmp.path()).unwrap();
        let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
        assert!(lib.contains("world: \"sink\"") && lib.contains("/out/my-sink-%{partition}.txt"));
        let build = std::fs::read_to_string(dir.join("build.sh")).unwrap();
        assert!(build.contains("release/my_sink.wasm"), "{build}");
        assert!(std::fs::read_to_string(dir.join("wit/pipeline.wit"))
            .unwrap()
            .contains("package flumen:pipeline@"));
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
        assert!(!readme.contains("{{"), "{readme}");
        assert!(matches!(
            create(Lang::Rust, Kind::Sink, "my-sink", tmp.path()),
            Err(ScaffoldError::Exists(_))
        ));
    }
}
