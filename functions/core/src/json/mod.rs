//! JSON, read the way Tributary needs it: a cursor for the one-pass readers ([`cursor`]), and
//! shape inference with the checks a record value must pass ([`shape`]).

pub(crate) mod cursor;
pub mod shape;
