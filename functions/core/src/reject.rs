//! Why a record, or one of its fields, does not land as a plain column value: the closed
//! vocabulary shared by the dead-letter area, the rescued-data column and the metrics.

use std::fmt;

/// Why a record is not written to its table. The `kind` names the metric dimension and the
/// `reason` is what a person reads in the dead-letter area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The closed vocabulary: the metric dimension and the dead-letter `reason` code.
    pub kind: RejectKind,
    /// What went wrong, for a person.
    pub reason: String,
}

/// Every reason a record or field is dead-lettered or rescued: a closed list, so metrics and
/// alarms can name each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectKind {
    /// The event carried a key or value that is not valid base64.
    InvalidBase64,
    /// The value is not UTF-8.
    InvalidUtf8,
    /// A second byte-order mark after the one stripped (under `conflicts: dead_letter`, any).
    ByteOrderMark,
    /// The value is not JSON.
    InvalidJson,
    /// The value is JSON but not an object.
    NotAnObject,
    /// An integer beyond 64 bits where no column can hold it.
    IntegerOutOfRange,
    /// A JSON number beyond `double`'s range (`1e400`): valid JSON that no numeric column holds.
    NumberOutOfRange,
    /// A field larger than the configured limit.
    FieldTooLarge,
    /// Nesting deeper than the configured limit.
    TooDeep,
    /// An object with a repeated key (under `conflicts: dead_letter`).
    DuplicateKey,
    /// An array mixing JSON kinds (under `conflicts: dead_letter`).
    MixedArray,
    /// A field whose kind its column cannot hold (under `conflicts: dead_letter`).
    SchemaConflict,
    /// A record with a null value, under `tombstones: dead_letter`.
    Tombstone,
    /// A value the Arrow decoder refused although its shape fitted.
    DecodeError,
    /// A record that does not match the Kafka record format of the event.
    MalformedRecord,
}

impl RejectKind {
    /// The name used in metrics and dead-letter files (`snake_case`).
    pub fn as_str(self) -> &'static str {
        match self {
            RejectKind::InvalidBase64 => "invalid_base64",
            RejectKind::InvalidUtf8 => "invalid_utf8",
            RejectKind::ByteOrderMark => "byte_order_mark",
            RejectKind::InvalidJson => "invalid_json",
            RejectKind::NotAnObject => "not_an_object",
            RejectKind::IntegerOutOfRange => "integer_out_of_range",
            RejectKind::NumberOutOfRange => "number_out_of_range",
            RejectKind::FieldTooLarge => "field_too_large",
            RejectKind::TooDeep => "too_deep",
            RejectKind::DuplicateKey => "duplicate_key",
            RejectKind::MixedArray => "mixed_array",
            RejectKind::SchemaConflict => "schema_conflict",
            RejectKind::Tombstone => "tombstone",
            RejectKind::DecodeError => "decode_error",
            RejectKind::MalformedRecord => "malformed_record",
        }
    }
}

impl Reject {
    /// A reject of `kind`, with a reason for a person.
    pub fn new(kind: RejectKind, reason: impl Into<String>) -> Self {
        Reject { kind, reason: reason.into() }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.reason)
    }
}
