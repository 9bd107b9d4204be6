//! One module per command. Each reads its flags (`args`), calls the
//! libraries, and prints (`print`) or writes (`io`) what they return;
//! commands never import each other.

pub mod data;
pub mod demo;
pub mod evaluate;
pub mod explain_eval;
pub mod models;
pub mod run;
pub mod serve;
pub mod train;
pub mod tune;
pub mod use_model;
