//! The core's modules form layers with no cycles (docs/architecture.md): a module's code (its
//! tests aside) names only modules of lower layers. A new `use` that breaks the order fails here.

use std::collections::BTreeSet;
use std::path::Path;

/// Bottom to top; a module may use those of lower layers only.
const LAYERS: &[&[&str]] = &[
    &["naming", "reject", "metrics", "parquet"],
    &["json"],
    &["kafka", "table"],
    &["config"],
    &["layout"],
    &["ingest", "compaction", "catalog", "watch"],
    &["testing"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level modules a file's non-test code names through `crate::`.
fn uses(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap();
    // Test modules close each file.
    let code = text.split("#[cfg(test)]").next().unwrap();
    let mut out = BTreeSet::new();
    for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for (at, _) in line.match_indices("crate::") {
            let name: String = line[at + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            out.insert(name);
        }
    }
    out
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn modules_use_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut checked = 0;
    let mut wrong = Vec::new();
    for path in all {
        let rel = path.strip_prefix(&src).unwrap();
        let module = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if module == "lib" {
            continue;
        }
        let own = layer(&module).unwrap_or_else(|| panic!("{module} is in no layer: add it to LAYERS and docs/architecture.md"));
        for used in uses(&path) {
            let Some(theirs) = layer(&used) else { continue }; // `crate::Config` and the like
            checked += 1;
            if used != module && theirs >= own {
                wrong.push(format!("{} uses {used}", rel.display()));
            }
        }
    }
    assert!(checked > 40, "the scan found the core's imports ({checked})");
    assert!(wrong.is_empty(), "upward or sideways uses: {wrong:#?}");
}
