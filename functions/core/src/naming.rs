//! Athena-safe names for tables and columns.
//!
//! Athena (and the Glue catalog behind it) folds identifiers to lower case and accepts only
//! letters, digits and underscores. Names here are made valid once, deterministically, so the
//! same topic or JSON key always maps to the same table or column.

/// Prefix of the Kafka metadata columns. Data columns can never start with it (see [`column_name`]).
pub const META_PREFIX: &str = "_kafka_";

/// The column that holds, as a JSON object, the fields of a row that could not be stored in their
/// own columns (the rescued-data column). A data field of this name is renamed like the
/// metadata columns are (see [`column_name`]).
pub const RESCUED_COLUMN: &str = "_rescued_data";

/// Maximum identifier length Glue accepts.
const MAX_LEN: usize = 255;

fn sanitize(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    out
}

fn truncate(mut s: String) -> String {
    // Only ASCII remains after sanitizing, so byte truncation is safe.
    s.truncate(MAX_LEN);
    s
}

/// The default table name for a Kafka topic: lower case, `[a-z0-9_]`, starting with a letter
/// (`t_` is prefixed otherwise). `orders-v1.eu` becomes `orders_v1_eu`.
pub fn table_name(topic: &str) -> String {
    let s = sanitize(topic);
    let s = if s.starts_with(|c: char| c.is_ascii_lowercase()) { s } else { format!("t_{s}") };
    truncate(s)
}

/// The column name for a JSON key: lower case, `[a-z0-9_]`. Names that are empty, start with a
/// digit, start with the metadata prefix, or equal the rescued-data column or a reserved name (the
/// partition keys) get an `f_` prefix, so a data column can never collide with a column
/// Tributary adds.
pub fn column_name(raw: &str, reserved: &[&str]) -> String {
    let s = sanitize(raw);
    let clash = s.is_empty()
        || s.starts_with(|c: char| c.is_ascii_digit())
        || s.starts_with(META_PREFIX)
        || s == RESCUED_COLUMN
        || reserved.contains(&s.as_str());
    truncate(if clash { format!("f_{s}") } else { s })
}

/// True when `name` is already a valid lower-case Athena identifier.
pub fn is_valid_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_LEN
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_from_topics() {
        assert_eq!(table_name("customer_data"), "customer_data");
        assert_eq!(table_name("orders-v1.EU"), "orders_v1_eu");
        assert_eq!(table_name("2026-events"), "t_2026_events");
        assert_eq!(table_name("_private"), "t__private");
        assert!(is_valid_identifier(&table_name("Ünïcode-topic")));
    }

    #[test]
    fn columns_never_collide_with_metadata_or_partitions() {
        let reserved = ["dt", "hr"];
        assert_eq!(column_name("Name", &reserved), "name");
        assert_eq!(column_name("first name", &reserved), "first_name");
        assert_eq!(column_name("_kafka_offset", &reserved), "f__kafka_offset");
        assert_eq!(column_name("_KAFKA_offset", &reserved), "f__kafka_offset");
        assert_eq!(column_name("dt", &reserved), "f_dt");
        assert_eq!(column_name("_Rescued_Data", &reserved), "f__rescued_data");
        assert_eq!(column_name("_rescued_data_2", &reserved), "_rescued_data_2");
        assert_eq!(column_name("1st", &reserved), "f_1st");
        assert_eq!(column_name("", &reserved), "f_");
        for raw in ["a-b", "Ab", "ÿ", "x y", "_kafka_", "0"] {
            let c = column_name(raw, &reserved);
            assert!(is_valid_identifier(&c) || c.starts_with('_'), "{raw} -> {c}");
            assert!(!c.starts_with(META_PREFIX));
        }
    }

    #[test]
    fn long_names_are_cut_to_glue_limit() {
        let long = "a".repeat(400);
        assert_eq!(table_name(&long).len(), 255);
        assert_eq!(column_name(&long, &[]).len(), 255);
    }
}
