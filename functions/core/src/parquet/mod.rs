//! Parquet, a leaf: the Athena-safe writer settings and encoding ([`write`]), and the merge that
//! copies compressed pages ([`splice`]).

pub mod splice;
pub mod write;
