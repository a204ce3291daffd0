//! Replays every input the fuzz targets (`tests/fuzz`) ever crashed on, kept under
//! `tests/fuzz/regressions/<target>/`, and the bad-input corpora, through the same entry points
//! (`tributary_core::testing::fuzz`): none may panic.

use std::path::{Path, PathBuf};

use tributary_core::testing::fuzz;

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    out.sort();
    out
}

/// A fuzz target: its name, its entry point, and the corpora replayed through it.
type Target = (&'static str, fn(&[u8]), &'static [&'static str]);

#[test]
fn fuzz_regressions_and_corpora_never_panic() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let targets: [Target; 3] = [
        ("records", fuzz::records, &["corpus/bad-values"]),
        ("kafka_event", fuzz::kafka_event, &["corpus/bad-events", "../events"]),
        ("s3_event", fuzz::s3_event, &["corpus/bad-events", "../events"]),
    ];
    let mut replayed = 0;
    for (target, run, corpora) in targets {
        let mut inputs = files(&root.join("fuzz/regressions").join(target));
        for c in corpora {
            inputs.extend(files(&root.join(c)));
        }
        for path in inputs {
            let data = std::fs::read(&path).expect("input");
            if std::panic::catch_unwind(|| run(&data)).is_err() {
                panic!("{target} panicked on {}", path.display());
            }
            replayed += 1;
        }
    }
    assert!(replayed > 100, "{replayed} inputs replayed");
}
