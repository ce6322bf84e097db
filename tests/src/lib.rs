//! Cross-crate and multi-process tests of Iris live in `tests/tests/`. The repository README
//! is included below so its examples run as doctests.
#![doc = include_str!("../../README.md")]
