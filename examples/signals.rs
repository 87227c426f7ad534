//! Prints the name of each signal the process receives, one a line, until SIGINT; then exits 0.
//!
//! ```text
//! cargo run --example signals &
//! kill -USR1 $!; kill -HUP $!; kill -INT $!
//! ```
//!
//! Listens for SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM, SIGCHLD, SIGCONT, SIGTSTP,
//! SIGWINCH, SIGINT and the real-time signals through one [`ringloop::signal::Signals`].

use ringloop::signal::{self, Signals};

/// The signals the example listens for.
pub fn listened() -> Vec<i32> {
    let mut listened = vec![
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGTERM,
        libc::SIGCHLD,
        libc::SIGCONT,
        libc::SIGTSTP,
        libc::SIGWINCH,
        libc::SIGINT,
    ];
    listened.extend(libc::SIGRTMIN()..=libc::SIGRTMAX());
    listened
}

/// Writes the name of each signal received to `out`, one a line, until SIGINT (included).
pub async fn print_signals(out: &mut impl std::io::Write) -> std::io::Result<()> {
    let mut signals = Signals::new(listened())?;
    loop {
        let sig = signals.recv().await?;
        writeln!(out, "{}", signal::name(sig))?;
        out.flush()?;
        if sig == libc::SIGINT {
            return Ok(());
        }
    }
}

fn main() -> std::io::Result<()> {
    ringloop::run(async { print_signals(&mut std::io::stdout().lock()).await })
}
