//! Prints which backend ringloop runs on here, why, and which features are on.
//!
//! ```text
//! cargo run --example backend
//! RINGLOOP_BACKEND=epoll cargo run --example backend
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    match ringloop::Runtime::builder().build() {
        Ok(rt) => {
            println!("{}", rt.backend_report());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ringloop cannot start: {e}");
            ExitCode::FAILURE
        }
    }
}
