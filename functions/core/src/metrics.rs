//! CloudWatch Embedded Metric Format: one JSON log line carries the metrics, which CloudWatch
//! extracts without any API call from the function.

use serde_json::{Map, Value, json};

/// The units CloudWatch takes that Tributary uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A count.
    Count,
    /// Bytes.
    Bytes,
    /// Milliseconds.
    Milliseconds,
    /// Seconds.
    Seconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
        }
    }
}

/// One EMF document: a set of metrics sharing one set of dimensions.
#[derive(Debug, Clone)]
pub struct Emf {
    namespace: String,
    dimensions: Vec<(String, String)>,
    metrics: Vec<(String, f64, Unit)>,
}

impl Emf {
    /// A metrics line in `namespace`.
    pub fn new(namespace: &str) -> Self {
        Emf { namespace: namespace.to_string(), dimensions: Vec::new(), metrics: Vec::new() }
    }

    /// Adds a dimension to every metric of the line.
    pub fn dimension(mut self, name: &str, value: &str) -> Self {
        self.dimensions.push((name.to_string(), value.to_string()));
        self
    }

    /// Adds a metric.
    pub fn metric(&mut self, name: &str, value: f64, unit: Unit) -> &mut Self {
        self.metrics.push((name.to_string(), value, unit));
        self
    }

    /// The JSON line, stamped with `timestamp_ms`.
    pub fn to_json(&self, timestamp_ms: i64) -> String {
        let mut root = Map::new();
        // All dimensions, and the first alone: alarms watch the roll-up (e.g. per function),
        // dashboards the detail (e.g. per table).
        let dims: Vec<&str> = self.dimensions.iter().map(|(k, _)| k.as_str()).collect();
        let sets: Vec<Vec<&str>> = if dims.len() > 1 { vec![dims.clone(), vec![dims[0]]] } else { vec![dims] };
        let defs: Vec<Value> = self.metrics.iter().map(|(n, _, u)| json!({"Name": n, "Unit": u.as_str()})).collect();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{"Namespace": self.namespace, "Dimensions": sets, "Metrics": defs}]
            }),
        );
        for (k, v) in &self.dimensions {
            root.insert(k.clone(), Value::String(v.clone()));
        }
        for (n, v, _) in &self.metrics {
            root.insert(n.clone(), json!(v));
        }
        Value::Object(root).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_document_shape() {
        let mut e = Emf::new("Tributary").dimension("Function", "ingest").dimension("Table", "orders");
        e.metric("RecordsIn", 10.0, Unit::Count).metric("BytesWritten", 2048.0, Unit::Bytes);
        let v: Value = serde_json::from_str(&e.to_json(1234)).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 1234);
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Function", "Table"], ["Function"]]));
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Metrics"][1], json!({"Name": "BytesWritten", "Unit": "Bytes"}));
        assert_eq!(v["RecordsIn"], 10.0);
        assert_eq!(v["Table"], "orders");
    }
}
