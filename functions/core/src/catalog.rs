//! What the Glue Data Catalog should say about a table, decided without I/O: Athena column
//! types, partition keys, storage format, and how an existing table evolves.

use arrow_schema::{DataType, TimeUnit};

use crate::config::Granularity;
use crate::table::kafka_columns::meta_fields;
use crate::table::schema::TableSchema;

/// The Hive SerDe Athena reads Parquet tables with.
pub const SERDE: &str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";
/// The Hive input format of a Parquet table.
pub const INPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
/// The Hive output format of a Parquet table.
pub const OUTPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";

/// A column as Glue stores it: name and Athena (Hive DDL) type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogColumn {
    /// The column's name.
    pub name: String,
    /// The column's Athena (Hive DDL) type, such as `bigint` or `array<string>`.
    pub ty: String,
}

impl CatalogColumn {
    /// A column named `name` of Athena type `ty`.
    pub fn new(name: &str, ty: &str) -> Self {
        CatalogColumn { name: name.to_string(), ty: ty.to_string() }
    }
}

/// The Athena type of an Arrow type, or why Athena cannot read it correctly.
pub fn athena_type(t: &DataType) -> Result<String, String> {
    Ok(match t {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal128(p, s) if *p <= 38 && *s >= 0 => format!("decimal({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "binary".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(TimeUnit::Millisecond | TimeUnit::Microsecond, _) => "timestamp".into(),
        DataType::List(f) | DataType::LargeList(f) => format!("array<{}>", athena_type(f.data_type())?),
        DataType::Struct(fields) => {
            let inner: Result<Vec<String>, String> =
                fields.iter().map(|f| Ok(format!("{}:{}", f.name(), athena_type(f.data_type())?))).collect();
            format!("struct<{}>", inner?.join(","))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                format!("map<{},{}>", athena_type(kv[0].data_type())?, athena_type(kv[1].data_type())?)
            }
            other => return Err(format!("map entries of {other}")),
        },
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            return Err(format!("{t} is unsigned: Athena reads unsigned Parquet integers wrongly"));
        }
        DataType::Timestamp(TimeUnit::Second | TimeUnit::Nanosecond, _) => {
            return Err(format!("{t}: write timestamps in milli- or microseconds"));
        }
        other => return Err(format!("{other} has no Athena type")),
    })
}

/// The table's columns in Glue: the data columns then the Kafka metadata columns.
pub fn columns(schema: &TableSchema) -> Vec<CatalogColumn> {
    let mut out: Vec<CatalogColumn> =
        schema.columns.iter().map(|c| CatalogColumn { name: c.name.clone(), ty: c.ty.to_string() }).collect();
    for f in meta_fields() {
        // The metadata columns are Tributary's own, always mappable.
        let ty = athena_type(f.data_type()).unwrap_or_else(|e| unreachable!("metadata column {}: {e}", f.name()));
        out.push(CatalogColumn { name: f.name().clone(), ty });
    }
    out
}

/// The partition keys, all strings (`dt`, and `hr` by the hour).
pub fn partition_keys(g: Granularity) -> Vec<CatalogColumn> {
    match g {
        Granularity::Hour => vec![CatalogColumn::new("dt", "string"), CatalogColumn::new("hr", "string")],
        Granularity::Day => vec![CatalogColumn::new("dt", "string")],
    }
}

/// How a table's columns change to take a new schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evolution {
    /// The table already has every column, with types that read the new data.
    Unchanged,
    /// The new column list: existing columns first (some widened), new ones appended.
    Changed {
        /// Every column, in table order.
        columns: Vec<CatalogColumn>,
        /// The names of the columns appended.
        added: Vec<String>,
        /// The names of the columns whose types were widened.
        widened: Vec<String>,
    },
    /// A column would change type in a way Athena cannot read across old and new files.
    Refused(String),
}

/// Widenings Athena reads across files: int to bigint, float to double.
fn widens(from: &str, to: &str) -> bool {
    matches!((from, to), ("int", "bigint") | ("float", "double") | ("tinyint" | "smallint", "int" | "bigint"))
}

/// Decides how `existing` columns take `wanted` ones. Columns are never dropped or reordered: a
/// column the schema no longer has stays (older files hold it).
pub fn evolve(existing: &[CatalogColumn], wanted: &[CatalogColumn]) -> Evolution {
    let mut columns = existing.to_vec();
    let mut added = Vec::new();
    let mut widened = Vec::new();
    for w in wanted {
        match columns.iter_mut().find(|c| c.name == w.name) {
            Some(c) if c.ty == w.ty => {}
            Some(c) if widens(&c.ty, &w.ty) => {
                c.ty = w.ty.clone();
                widened.push(w.name.clone());
            }
            Some(c) if struct_extends(&c.ty, &w.ty) => {
                c.ty = w.ty.clone();
                widened.push(w.name.clone());
            }
            Some(c) => {
                return Evolution::Refused(format!("column {:?} is {} in the catalog; the data now says {}", c.name, c.ty, w.ty));
            }
            None => {
                columns.push(w.clone());
                added.push(w.name.clone());
            }
        }
    }
    if added.is_empty() && widened.is_empty() { Evolution::Unchanged } else { Evolution::Changed { columns, added, widened } }
}

/// A struct (or array of structs) that only gained fields at its end: Athena reads old files
/// with the new fields as null. Conservative: other nested changes are refused.
fn struct_extends(old: &str, new: &str) -> bool {
    if !old.contains("struct<") {
        return false;
    }
    let k = old.len() - old.trim_end_matches('>').len();
    let prefix = &old[..old.len() - k];
    new.len() > old.len()
        && new.starts_with(prefix)
        && new[prefix.len()..].starts_with(',')
        && new.ends_with(&old[old.len() - k..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::{Field, Fields};
    use std::sync::Arc;

    #[test]
    fn arrow_types_map_to_athena_types() {
        let list = DataType::List(Arc::new(Field::new("element", DataType::Int64, true)));
        let st = DataType::Struct(Fields::from(vec![Field::new("a", DataType::Utf8, true), Field::new("b", list.clone(), true)]));
        let map = DataType::Map(
            Arc::new(Field::new(
                "entries",
                DataType::Struct(Fields::from(vec![
                    Field::new("k", DataType::Utf8, false),
                    Field::new("v", DataType::Float64, true),
                ])),
                false,
            )),
            false,
        );
        for (t, want) in [
            (DataType::Boolean, "boolean"),
            (DataType::Int32, "int"),
            (DataType::Int64, "bigint"),
            (DataType::Float32, "float"),
            (DataType::Float64, "double"),
            (DataType::Decimal128(18, 2), "decimal(18,2)"),
            (DataType::Utf8, "string"),
            (DataType::Binary, "binary"),
            (DataType::Date32, "date"),
            (DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())), "timestamp"),
            (DataType::Timestamp(TimeUnit::Millisecond, None), "timestamp"),
            (list, "array<bigint>"),
            (st, "struct<a:string,b:array<bigint>>"),
            (map, "map<string,double>"),
        ] {
            assert_eq!(athena_type(&t).unwrap(), want, "{t}");
        }
        for bad in [DataType::UInt64, DataType::UInt8, DataType::Timestamp(TimeUnit::Nanosecond, None), DataType::Float16] {
            assert!(athena_type(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn schema_columns_end_with_kafka_metadata() {
        let mut s = TableSchema::default();
        s.push("amount".into(), "amount".into(), crate::table::schema::ColumnType::BigInt);
        let c = columns(&s);
        assert_eq!(c[0], CatalogColumn::new("amount", "bigint"));
        let names: Vec<&str> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names[1..],
            ["_kafka_topic", "_kafka_partition", "_kafka_offset", "_kafka_timestamp", "_kafka_key", "_kafka_headers"]
        );
        assert_eq!(c.last().unwrap().ty, "array<struct<key:string,value:binary>>");
        assert_eq!(c[4].ty, "timestamp");
    }

    #[test]
    fn evolution_appends_widens_and_refuses() {
        let col = CatalogColumn::new;
        let existing = vec![col("a", "int"), col("b", "string"), col("s", "struct<x:int>")];
        assert_eq!(evolve(&existing, &existing), Evolution::Unchanged);
        assert_eq!(evolve(&existing, &[col("b", "string")]), Evolution::Unchanged, "columns are never dropped");
        match evolve(&existing, &[col("a", "bigint"), col("c", "double"), col("s", "struct<x:int,y:string>")]) {
            Evolution::Changed { columns, added, widened } => {
                assert_eq!(
                    columns,
                    vec![col("a", "bigint"), col("b", "string"), col("s", "struct<x:int,y:string>"), col("c", "double")]
                );
                assert_eq!(added, ["c"]);
                assert_eq!(widened, ["a", "s"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(evolve(&existing, &[col("b", "bigint")]), Evolution::Refused(r) if r.contains("\"b\"")));
        assert!(matches!(evolve(&existing, &[col("a", "string")]), Evolution::Refused(_)));
        assert!(matches!(evolve(&existing, &[col("s", "struct<y:int>")]), Evolution::Refused(_)));
    }
}
