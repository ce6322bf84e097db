//! iris-sched (in progress)
