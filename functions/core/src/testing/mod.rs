//! Helpers for tests, benchmarks and the local tool: generated sample data ([`sample`]) and the
//! fuzz targets' entry points ([`fuzz`]).

pub mod fuzz;
pub mod sample;
