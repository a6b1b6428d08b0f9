//! Build tool for flumen's C guests (run by guests/build.sh):
//!
//! - `flumen-c-tool bindings WIT_DIR WORLD OUT_DIR` writes the C bindings of
//!   `flumen:pipeline/WORLD` (wit-bindgen's C generator: `WORLD.h`,
//!   `WORLD.c` and the component type object `WORLD_component_type.o`).
//! - `flumen-c-tool component CORE.wasm OUT.wasm` turns a core module built
//!   by clang for wasm32-wasi into a component, adapting its WASI preview 1
//!   imports to preview 2 with wasmtime's reactor adapter.

use anyhow::{bail, Context, Result};
use std::path::Path;
use wit_bindgen_core::wit_parser::Resolve;
use wit_bindgen_core::Files;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["bindings", wit, world, out] => bindings(Path::new(wit), world, Path::new(out)),
        ["component", core, out] => component(Path::new(core), Path::new(out)),
        _ => bail!(
            "usage: flumen-c-tool bindings WIT_DIR WORLD OUT_DIR | component CORE.wasm OUT.wasm"
        ),
    }
}

fn bindings(wit: &Path, world: &str, out: &Path) -> Result<()> {
    let mut resolve = Resolve::default();
    let (pkg, _) = resolve
        .push_dir(wit)
        .with_context(|| format!("reading {}", wit.display()))?;
    let world = resolve.select_world(&[pkg], Some(world))?;
    let mut files = Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world, &mut files)?;
    std::fs::create_dir_all(out)?;
    for (name, contents) in files.iter() {
        std::fs::write(out.join(name), contents)
            .with_context(|| format!("writing {}", out.join(name).display()))?;
    }
    Ok(())
}

fn component(core: &Path, out: &Path) -> Result<()> {
    let module = std::fs::read(core).with_context(|| format!("reading {}", core.display()))?;
    let bytes = wit_component::ComponentEncoder::default()
        .module(&module)?
        .validate(true)
        .adapter(
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?
        .encode()?;
    std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}
