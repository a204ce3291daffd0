//! The watch against the in-memory mappings: the metric it emits for each state, and a failed
//! read that emits nothing (the alarm's missing data pages).

use std::sync::Mutex;
use std::sync::atomic::Ordering;

use tributary_aws::{MappingStatus, MemoryMappings};

use super::*;
use tributary_aws::Instrumented;

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn sink(line: &str) {
    LINES.lock().unwrap().push(line.to_string());
}

fn status(state: &str, reason: Option<&str>, last: Option<&str>) -> MappingStatus {
    MappingStatus {
        state: state.into(),
        state_transition_reason: reason.map(str::to_string),
        last_processing_result: last.map(str::to_string),
        last_modified_ms: None,
    }
}

#[tokio::test]
async fn each_reading_emits_whether_the_mapping_is_stopped_and_a_failed_read_emits_nothing() {
    let config = WatchConfig { mapping_uuid: "u-1".into(), metrics_namespace: "Tributary/stack-a".into() };
    let watch = Watch::new(MemoryMappings::new(), config).with_metrics_sink(sink);
    for (s, stopped) in [
        (status("Enabled", Some("User action"), Some("OK")), false),
        (status("Enabled", None, Some("PROBLEM: SASL authentication failed")), true),
        (status("Disabled", Some("User initiated"), None), true),
        (status("Updating", None, None), false),
    ] {
        watch.mappings.set("u-1", s.clone());
        LINES.lock().unwrap().clear();
        let r = watch.handle().await.unwrap();
        assert_eq!((r.stopped, r.state.as_str()), (stopped, s.state.as_str()));
        let lines = LINES.lock().unwrap().clone();
        assert_eq!(lines.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["IngestSourceStopped"], if stopped { 1.0 } else { 0.0 });
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Tributary/stack-a", "the stack's own namespace");
        assert_eq!(v["Function"], "watch");
    }
    watch.mappings.failing_reads.store(1, Ordering::SeqCst);
    LINES.lock().unwrap().clear();
    let e = watch.handle().await.unwrap_err();
    assert!(LINES.lock().unwrap().is_empty(), "nothing emitted: the alarm treats missing data as breaching");
    assert_eq!(tributary_aws::startup::ErrorType::error_type(&e), "MappingReadError");
    let unknown = Watch::new(MemoryMappings::new(), WatchConfig { mapping_uuid: "gone".into(), metrics_namespace: "T".into() });
    assert!(unknown.handle().await.unwrap_err().to_string().contains("gone"));
}
