//! Cross-crate integration tests of Iris live in `tests/tests/`; this library is empty on purpose.
