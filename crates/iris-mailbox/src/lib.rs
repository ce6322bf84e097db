//! iris-mailbox (in progress)
