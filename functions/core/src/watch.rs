//! Whether the ingest event source mapping is consuming.
//!
//! Lambda's own metrics cannot tell an idle topic from a stopped mapping: a disabled mapping, or
//! one that cannot authenticate to the brokers, invokes nothing, so `Invocations`, `Errors` and
//! every metric of ours go missing, and an alarm that treats missing data as fine stays OK. The
//! watch function reads the mapping itself on a schedule and reports this verdict as a metric
//! whose alarm treats missing data as breaching (the watch itself not running is also a stop).

/// The verdict on one reading of the mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceHealth {
    /// Enabled, and its last poll reported no problem (an idle topic is this).
    Consuming,
    /// Being created, enabled or updated: a change someone asked for, normally minutes.
    Changing,
    /// Not consuming: disabled or being deleted, or enabled but failing (authentication, network,
    /// permissions), with the reason to page with.
    Stopped(String),
}

impl SourceHealth {
    /// The value of the `IngestSourceStopped` metric: 1 stopped, 0 otherwise.
    pub fn metric(&self) -> f64 {
        if matches!(self, SourceHealth::Stopped(_)) { 1.0 } else { 0.0 }
    }
}

/// A mapping still being created, enabled or updated after this long is stuck, not changing.
pub const STUCK_AFTER_MS: i64 = 30 * 60 * 1000;

/// The verdict from `GetEventSourceMapping`'s `State`, `StateTransitionReason` and
/// `LastProcessingResult`, and how long ago it was last modified (`LastModified`). An unknown
/// state counts as stopped: a new state AWS adds should page someone to look, not hide a stop.
pub fn source_health(
    state: &str,
    transition_reason: Option<&str>,
    last_result: Option<&str>,
    modified_ago_ms: Option<i64>,
) -> SourceHealth {
    let why = |what: &str| match (transition_reason, last_result) {
        (Some(r), Some(l)) => format!("{what} ({r}; last poll: {l})"),
        (Some(r), None) => format!("{what} ({r})"),
        (None, Some(l)) => format!("{what} (last poll: {l})"),
        (None, None) => what.to_string(),
    };
    match state {
        "Enabled" => match last_result {
            // Lambda reports a failing poll (authentication, network, permissions) this way while
            // the mapping stays Enabled.
            Some(l) if l.trim_start().to_ascii_uppercase().starts_with("PROBLEM") => {
                SourceHealth::Stopped(format!("the mapping is enabled but failing: {l}"))
            }
            _ => SourceHealth::Consuming,
        },
        "Creating" | "Enabling" | "Updating" => match modified_ago_ms {
            Some(ago) if ago >= STUCK_AFTER_MS => {
                SourceHealth::Stopped(why(&format!("the mapping is stuck in {state} for {} minutes", ago / 60_000)))
            }
            _ => SourceHealth::Changing,
        },
        "Disabled" | "Disabling" | "Deleting" => SourceHealth::Stopped(why(&format!("the mapping is {}", state.to_lowercase()))),
        other => SourceHealth::Stopped(why(&format!("the mapping is in an unknown state {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_a_verdict() {
        let cases = [
            ("Enabled", None, Some("OK"), 0.0),
            ("Enabled", None, Some("No records processed"), 0.0),
            ("Enabled", None, None, 0.0),
            ("Enabled", None, Some("PROBLEM: Connection error. Please check your event source connection configuration."), 1.0),
            ("Enabled", None, Some("problem: SASL authentication failed"), 1.0),
            ("Creating", None, None, 0.0),
            ("Enabling", None, None, 0.0),
            ("Updating", None, None, 0.0),
            ("Disabled", Some("User initiated"), None, 1.0),
            ("Disabling", Some("User initiated"), None, 1.0),
            ("Disabled", Some("Lambda initiated"), Some("PROBLEM: Function call failed"), 1.0),
            ("Deleting", None, None, 1.0),
            ("Paused", None, None, 1.0),
            ("", None, None, 1.0),
        ];
        // A change that never finishes is a stop.
        assert_eq!(source_health("Enabling", None, None, Some(STUCK_AFTER_MS - 1)).metric(), 0.0);
        assert_eq!(source_health("Updating", None, None, None).metric(), 0.0);
        let stuck = source_health("Enabling", None, None, Some(STUCK_AFTER_MS));
        assert!(matches!(&stuck, SourceHealth::Stopped(w) if w.contains("stuck in Enabling for 30 minutes")), "{stuck:?}");
        for (state, reason, last, stopped) in cases {
            let h = source_health(state, reason, last, Some(60_000));
            assert_eq!(h.metric(), stopped, "{state} {reason:?} {last:?}: {h:?}");
            if let SourceHealth::Stopped(why) = &h {
                assert!(why.len() > 15, "a reason to page with: {why}");
                if let Some(r) = reason {
                    assert!(why.contains(r), "{why}");
                }
            }
        }
    }
}
