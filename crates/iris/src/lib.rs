//! iris (in progress)
