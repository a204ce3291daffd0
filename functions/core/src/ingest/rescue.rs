//! The rescued-data column: a record's fields that cannot be stored in their own columns leave
//! those columns NULL, and their original JSON text goes into one `string` column
//! ([`crate::naming::RESCUED_COLUMN`]) holding a JSON object of field name to original value.
//! Athena reads it with `json_extract_scalar(_rescued_data, '$.zip')`.
//!
//! Rescue works on top-level fields: a conflict anywhere inside a field rescues the whole field.
//! Values are kept as their exact text, so a 128-bit integer keeps every digit.

use crate::json::shape::{Shape, split_fields};
use crate::reject::{Reject, RejectKind};
use crate::table::schema::{ColumnType, TableSchema};

/// A record with some fields taken out: the JSON object to decode, and the rescued fields as a
/// JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rescued {
    /// The value without the rescued fields, for the decoder.
    pub value: Vec<u8>,
    /// The rescued fields, as a JSON object's text.
    pub rescued: String,
}

/// Splits a record (a JSON object, without byte-order mark) into what its columns read and what
/// they cannot: every occurrence of a key in `rescue`, and each earlier occurrence of a key in
/// `repeated` (the last value of a repeated key wins, as in `JSON.parse`). A key rescued more
/// than once (a key repeated three times) appears as often in the rescued object, in order.
pub fn rescue_fields(body: &[u8], rescue: &[&str], repeated: &[String]) -> Result<Rescued, Reject> {
    let fields = split_fields(body)?;
    let mut value = Vec::with_capacity(body.len());
    let mut rescued = String::new();
    value.push(b'{');
    rescued.push('{');
    for (i, (key, raw)) in fields.iter().enumerate() {
        let superseded = repeated.iter().any(|k| k == key) && fields[i + 1..].iter().any(|(k, _)| k == key);
        let out_of_column = superseded || rescue.contains(&key.as_str());
        // Keys go out re-escaped by serde_json; values exactly as they came.
        let quoted = serde_json::to_string(key).map_err(|e| Reject::new(RejectKind::InvalidJson, e.to_string()))?;
        if out_of_column {
            if rescued.len() > 1 {
                rescued.push(',');
            }
            rescued.push_str(&quoted);
            rescued.push(':');
            rescued.push_str(raw);
        } else {
            if value.len() > 1 {
                value.push(b',');
            }
            value.extend_from_slice(quoted.as_bytes());
            value.push(b':');
            value.extend_from_slice(raw.as_bytes());
        }
    }
    value.push(b'}');
    rescued.push('}');
    Ok(Rescued { value, rescued })
}

/// The top-level fields of a record whose number does not fit its pinned `decimal(p,s)` column
/// exactly (too many digits, or digits below the scale: the decoder would drop those silently).
pub fn decimal_misfits(schema: &TableSchema, shape: &Shape, body: &[u8]) -> Result<Vec<(String, Reject)>, Reject> {
    let Shape::Object(fields) = shape else { return Ok(Vec::new()) };
    if !schema.columns.iter().any(|c| matches!(c.ty, ColumnType::Decimal(..))) {
        return Ok(Vec::new());
    }
    let decimal = |key: &str| {
        schema.columns.iter().find(|c| c.source == key).and_then(|c| match c.ty {
            ColumnType::Decimal(p, s) => Some((p, s)),
            _ => None,
        })
    };
    let numeric = |s: &Shape| matches!(s, Shape::Int | Shape::UInt64 | Shape::HugeInt | Shape::Float);
    if !fields.iter().any(|(k, s)| numeric(s) && decimal(k).is_some()) {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (key, raw) in split_fields(body)? {
        if let Some((p, s)) = decimal(&key)
            && raw.starts_with(|c: char| c == '-' || c.is_ascii_digit())
            && !fits_decimal(raw, p, s)
        {
            let reason = format!("field {key:?}: the number {raw} does not fit decimal({p},{s}) exactly");
            out.push((key, Reject::new(RejectKind::SchemaConflict, reason)));
        }
    }
    Ok(out)
}

/// Whether a JSON number's exact value fits `decimal(p,s)`: at most `p - s` digits before the
/// point and `s` after it, once leading and trailing zeros are gone.
pub fn fits_decimal(number: &str, p: u8, s: i8) -> bool {
    let n = number.strip_prefix('-').unwrap_or(number);
    let (mantissa, exp) = match n.find(['e', 'E']) {
        Some(at) => match n[at + 1..].parse::<i64>() {
            Ok(e) => (&n[..at], e),
            Err(_) => return false,
        },
        None => (n, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
    if !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    // The point sits after `point` of `digits`; strip zeros on both ends.
    let Some(first) = digits.iter().position(|d| *d != b'0') else { return true };
    let last = digits.iter().rposition(|d| *d != b'0').unwrap_or(first);
    // i128: an exponent near i64's ends must not overflow (serde_json reads `1e-9223372036854775808` as 0).
    let point = int.len() as i128 + i128::from(exp);
    let int_digits = (point - first as i128).max(0);
    let frac_digits = (last as i128 + 1 - point).max(0);
    int_digits <= i128::from(p) - i128::from(s) && frac_digits <= i128::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_out_of_their_columns_keep_their_exact_text() {
        let body = br#"{"name":"a","zip":340282366920938463463374607431768211455, "Name" : [1, "x"],"n":1,"n":2}"#;
        let r = rescue_fields(body, &["zip", "Name"], &["n".to_string()]).unwrap();
        assert_eq!(String::from_utf8(r.value).unwrap(), r#"{"name":"a","n":2}"#);
        assert_eq!(r.rescued, r#"{"zip":340282366920938463463374607431768211455,"Name":[1, "x"],"n":1}"#);
        let v: serde_json::Value = serde_json::from_str(&r.rescued).unwrap();
        assert_eq!(v["Name"][1], "x");
        // Escaped keys come out escaped; nothing rescued is an empty object.
        let r = rescue_fields(br#"{"a\"b":1}"#, &[], &[]).unwrap();
        assert_eq!((String::from_utf8(r.value).unwrap().as_str(), r.rescued.as_str()), (r#"{"a\"b":1}"#, "{}"));
        let r = rescue_fields(br#"{"k":1,"k":2,"k":3}"#, &[], &["k".to_string()]).unwrap();
        assert_eq!((String::from_utf8(r.value).unwrap().as_str(), r.rescued.as_str()), (r#"{"k":3}"#, r#"{"k":1,"k":2}"#));
    }

    #[test]
    fn decimals_fit_exactly_or_not() {
        for (n, p, s, fits) in [
            ("123.45", 5, 2, true),
            ("123.450", 5, 2, true),
            ("123.451", 5, 2, false),
            ("1234.5", 5, 2, false),
            ("-0.01", 3, 2, true),
            ("0", 1, 0, true),
            ("000.000", 1, 0, true),
            ("1e2", 3, 0, true),
            ("1e3", 3, 0, false),
            ("1.5e-1", 3, 2, true),
            ("1.5e-2", 3, 2, false),
            ("18446744073709551615", 20, 0, true),
            ("340282366920938463463374607431768211455", 38, 0, false),
            ("1e-9223372036854775808", 38, 10, false),
            ("1e9223372036854775807", 38, 0, false),
            ("0e9223372036854775807", 1, 0, true),
        ] {
            assert_eq!(fits_decimal(n, p, s), fits, "{n} in decimal({p},{s})");
        }
    }
}
