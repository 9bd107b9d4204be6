//! The routes, by what they serve. Each handler is a `ModelHandle` or
//! `EventStore` call between reading the request and answering JSON.

pub(crate) mod browse;
pub(crate) mod events;
pub(crate) mod ops;
pub(crate) mod recommend;
