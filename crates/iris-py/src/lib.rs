#![doc = include_str!("../README.md")]
#![warn(missing_docs, unreachable_pub)]
#![deny(unsafe_op_in_unsafe_fn)]

mod convert;
mod errors;
mod exiting;
mod handler;
mod jit;
mod lane;
mod mailbox;
mod runtime;

use pyo3::prelude::*;

/// The version of the Iris Python package.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The native module `iris._iris`; the `iris` package re-exports it.
#[pymodule]
fn _iris(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    mailbox::note_main_thread(py);
    m.add_class::<runtime::PyRuntime>()?;
    runtime::install_fast_send(py)?;
    m.add_class::<mailbox::PyMailbox>()?;
    m.add_class::<convert::PySystemMessage>()?;
    m.add_class::<convert::PyExitInfo>()?;
    m.add_class::<handler::StopSignal>()?;
    m.add("STOP", handler::stop(py).clone_ref(py))?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(handler::current_pid, m)?)?;
    m.add_class::<jit::PyJitFunction>()?;
    m.add_function(wrap_pyfunction!(jit::jit_compile, m)?)?;
    m.add_function(wrap_pyfunction!(jit::set_jit_logging, m)?)?;
    m.add_function(wrap_pyfunction!(jit::get_jit_logging, m)?)?;
    errors::register(m)?;
    let at_exit = wrap_pyfunction!(exiting::_at_exit, m)?;
    m.add_function(at_exit.clone())?;
    py.import("atexit")?.call_method1("register", (at_exit,))?;
    let after_fork = wrap_pyfunction!(exiting::_after_fork_in_child, m)?;
    m.add_function(after_fork.clone())?;
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("after_in_child", after_fork)?;
    py.import("os")?
        .getattr("register_at_fork")?
        .call((), Some(&kwargs))?;
    Ok(())
}
