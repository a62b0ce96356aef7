//! The `st-secrets` command line, for the package's console script: the
//! tool's crate is linked in here, so `pip install` (or `pipx`) gives shell
//! users the same tool as the Rust build.

use pyo3::prelude::*;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run_tool, m)?)?;
    Ok(())
}

/// Runs the tool on `args` (without the program name); returns its exit
/// status. Detached: the tool may prompt or wait on the network.
#[pyfunction]
fn run_tool(py: Python<'_>, args: Vec<String>) -> u8 {
    py.detach(|| st_secrets_cli::main_with_args(args.into_iter()))
}
