//! How the code is laid out, where a test can hold it so.

use std::path::Path;

fn rust_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// Imports go downward: the entry points (`cli`, `startup`) wire the features together,
/// and no feature or shared part reaches back up to them (`AppState` is in `state`).
#[test]
fn features_never_import_the_wiring() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let entry_points = ["cli.rs", "startup.rs", "lib.rs", "main.rs"].map(|f| src.join(f));
    let upward: Vec<String> = files
        .iter()
        .filter(|f| !entry_points.contains(f))
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.contains("crate::startup")
                || text.contains("crate::cli")
                || text.contains("    startup::")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(upward.is_empty(), "{upward:#?}");
}
