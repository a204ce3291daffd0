//! Helpers for tests, benchmarks and the local tool (the `testing` feature): generated sample
//! data ([`sample`]), Kafka events as the event source mapping builds them ([`events`]), and the
//! fuzz targets' entry points ([`fuzz`]).

pub mod events;
pub mod fuzz;
pub mod sample;
