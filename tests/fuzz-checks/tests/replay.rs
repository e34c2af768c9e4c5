//! Replays the kept fuzz corpus (`fuzz/corpus/<target>/`, every file) through
//! the checks the fuzz targets run, so that every input a fuzz run found
//! interesting, and every finding fixed, is checked in the ordinary test run.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

#[test]
fn every_kept_input_passes_its_check() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let mut failed = Vec::new();
    for &(target, check) in provider_sync_fuzz_checks::TARGETS {
        let dir = corpus.join(target);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "{} is empty", dir.display());
        for input in inputs {
            let data = std::fs::read(&input).unwrap();
            if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
                failed.push(format!("{target}/{}", input.file_name().unwrap().display()));
            }
        }
    }
    assert!(failed.is_empty(), "checks failed on: {failed:?}");
}
