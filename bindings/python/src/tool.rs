//! The `st-secrets` command line, for the package's console script: the
//! tool's own source file is compiled in here, so `pip install` (or `pipx`)
//! gives shell users the same tool as the Rust build.

use pyo3::prelude::*;

#[allow(dead_code)] // the tool's `fn main`: the console script calls main_with_args
#[path = "../../../src/bin/st-secrets/main.rs"]
mod cli;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run_tool, m)?)?;
    Ok(())
}

/// Runs the tool on `args` (without the program name); returns its exit
/// status. Detached: the tool may prompt or wait on the network.
#[pyfunction]
fn run_tool(py: Python<'_>, args: Vec<String>) -> u8 {
    py.detach(|| cli::main_with_args(args.into_iter()))
}
